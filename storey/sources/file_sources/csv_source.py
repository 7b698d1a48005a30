"""CSVSource: CSV files replayed as events, read by pyarrow in blocks."""

import pyarrow as pa

from ...core.checks import check_storage_options
from ...core.columns import Columns
from ...core.times import NAIVE
from ...core.value_kinds import PLAIN, IntOrNaNKind, object_array
from .arrow_input import ArrowColumnData, ColumnPlan, column_plan
from .csv_reading import CsvError, CsvFile
from .dataframe_source import BATCH_ROWS
from .event_fields import EventFields, check_time_unit
from .replay import ReplaySource
from .source_checks import check_field, check_paths
from .time_text import TimeParseError, parse_times


class CSVSource(ReplaySource):
    """Reads CSV files as input source for a flow.

    Fields are typed from the first block of each file (ints, floats, `true`/`false` in any
    case, strings; an empty field is NaN in a number column and None otherwise), unless
    `type_inference` is False. Each path may be an fsspec URL (`storage_options` are passed to
    fsspec).

    :param paths: paths to CSV files
    :param header: whether CSV files have a header or not. Defaults to False.
    :param build_dict: whether to format each record produced from the input file as a dictionary
        (as opposed to a list). Default to False. Needs `header`.
    :param key_field: the CSV field to be used as the key for events. May be an int (field index)
        or string (field name) if with_header is True. Defaults to None (no key). Can be a list
        of keys
    :param time_field: the CSV field to be parsed as the timestamp for events. May be an int
        (field index) or string (field name) if with_header is True. Defaults to None (no
        timestamp field).
    :param timestamp_format: timestamp format as defined in datetime.strptime(). Default to
        ISO-8601 as defined in datetime.fromisoformat().
    :param id_field: the CSV field to be used as the ID for events. May be an int (field index)
        or string (field name) if with_header is True. Defaults to None (random ID will be
        generated per event).
    :param type_inference: Whether to infer data types from the data (when True), or read all
        fields in as strings (when False). Defaults to True.
    :param parse_dates: list of columns (names or integers) that will be attempted to parse as
        date column
    :param time_unit: read an integer time field as epoch time in this unit: 's', 'ms', 'us' or
        'ns' (not in storey 1.0.6, whose time field is ISO-8601 text or `timestamp_format`).

    for additional params, see documentation of Flow
    """

    def __init__(
        self,
        paths,
        header=False,
        build_dict=False,
        key_field=None,
        time_field=None,
        timestamp_format=None,
        id_field=None,
        type_inference=True,
        parse_dates=None,
        storage_options=None,
        time_unit=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._describe(paths=paths, header=header, build_dict=build_dict)
        for param, value in (("key_field", key_field), ("time_field", time_field), ("id_field", id_field)):
            if value is not None:
                self._describe(**{param: value})
        if timestamp_format is not None:
            self._describe(timestamp_format=timestamp_format)
        self._describe(type_inference=type_inference)
        name = self.name
        self._time_unit = check_time_unit(name, time_unit)
        if time_unit is not None and timestamp_format is not None:
            raise ValueError(
                f"{name}: time_unit (integer times) and timestamp_format (text times) exclude each other"
            )
        self._paths = check_paths(name, paths)
        self._header = bool(header)
        self._build_dict = bool(build_dict)
        self._key_field = check_field(name, "key_field", key_field, allow_int=True, allow_list=True)
        self._time_field = check_field(name, "time_field", time_field, allow_int=True)
        self._id_field = check_field(name, "id_field", id_field, allow_int=True)
        if isinstance(parse_dates, str | int):
            parse_dates = [parse_dates]
        self._parse_dates = (
            check_field(name, "parse_dates", parse_dates, allow_int=True, allow_list=True) or []
        )
        if timestamp_format is not None and not isinstance(timestamp_format, str):
            raise TypeError(f"{name}: timestamp_format must be a str, got {type(timestamp_format).__name__}")
        self._timestamp_format = timestamp_format
        self._type_inference = bool(type_inference)
        self._storage_options = check_storage_options(name, storage_options)
        if not self._header:
            for param, value in (
                ("key_field", self._key_field),
                ("time_field", self._time_field),
                ("id_field", self._id_field),
                ("parse_dates", self._parse_dates),
            ):
                for v in value if isinstance(value, list) else [value]:
                    if isinstance(v, str):
                        raise ValueError(
                            f"{name}: {param} can only be a field index (int) when header is False, got {v!r}"
                        )
        elif any(isinstance(v, int) for v in self._parse_dates):
            raise ValueError(f"{name}: parse_dates can be a list of ints only when there is no header")
        elif isinstance(self._time_field, int):
            raise ValueError(
                f"{name}: time_field can be a field index (int) only when there is no header, "
                f"got {self._time_field!r} with header=True"
            )

    def _batches(self, ids):
        try:
            for path in self._paths:
                yield from self._read(path, ids)
        except CsvError as ex:
            # a plain ValueError, as the reference raises (the message says where)
            raise ValueError(str(ex)) from None

    def _read(self, path, ids):
        file = CsvFile(path, self._storage_options, self._header, self._type_inference, self.name)
        schema = file.inferred_schema()
        if schema is None:
            return
        layout = _Layout(self, file, len(schema))
        for record_batch in file.batches(schema, layout.text_columns):
            for start in range(0, record_batch.num_rows, BATCH_ROWS):
                part = record_batch.slice(start, BATCH_ROWS)
                yield layout.events(part, file.rows_read + start + 1, ids)


class _Layout:
    """Where a file's key, time, id and date fields are, and how its rows become events."""

    def __init__(self, source, file, width):
        self.source = source
        self.file = file
        self.width = width
        names = file.names
        self.key = _index(source._key_field, names, width, "key_field", file.path, source.name)
        self.time = _index(source._time_field, names, width, "time_field", file.path, source.name)
        self.id = _index(source._id_field, names, width, "id_field", file.path, source.name)
        self.dates = set(
            _index(source._parse_dates, names, width, "parse_dates", file.path, source.name) or []
        )
        self.text_columns = set(self.dates)
        if self.time is not None and source._time_unit is None:
            self.text_columns.add(self.time)
        self.dict_bodies = source._build_dict and names is not None
        if self.dict_bodies:
            # a repeated header name holds the last of its fields, at the first one's place
            last = {name: i for i, name in enumerate(names)}
            self.body_fields = [(name, last[name]) for name in dict.fromkeys(names)]
        else:
            self.body_fields = [(f"c{i}", i) for i in range(width)]
        key = self.key
        self.fields = EventFields(
            key=[_col(k) for k in key] if isinstance(key, list) else None if key is None else _col(key),
            time=None if self.time is None else _col(self.time),
            id=None if self.id is None else _col(self.id),
            list_key_skips_nan=False,
            now_style=NAIVE,
            time_unit=source._time_unit,
            step=source.name,
            labels={_col(i): file.column_name(i) for i in range(width)},
            on_skipped=source._count_skipped,
        )
        # columns with no value so far: the reference gives their empty fields None, not NaN
        self.leading = set(range(width))

    def events(self, part, first_row, ids):
        """The EventBatch of a slice of the file whose first row is data row `first_row`."""
        arrays = list(part.columns)
        plans = {i: _plan(arr) for i, arr in enumerate(arrays)}
        cached = self._leading_nones(arrays, plans)
        parsed = self._parsed_times(arrays, first_row)
        keyed = self._columns(arrays, plans, cached, parsed, [(_col(i), i) for i in range(self.width)])
        body_parsed = parsed if self.source._type_inference else {}
        body = self._columns(arrays, plans, cached, body_parsed, self.body_fields)
        return self.fields.batch(
            keyed, ids, self.file.path, body=body, list_bodies=not self.dict_bodies, first_row=first_row
        )

    def _leading_nones(self, arrays, plans):
        """Row values (object arrays) of number columns whose first fields in the file are empty."""
        cached = {}
        for i in sorted(self.leading):
            arr = arrays[i]
            if not arr.null_count:
                self.leading.discard(i)
                continue
            valid = arr.is_valid().to_numpy(zero_copy_only=False)
            first = int(valid.argmax()) if valid.any() else len(arr)
            if first and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
                plan = plans[i]
                values = object_array(plan.kind(plan.to_numpy(arr)))
                values[:first] = None
                cached[i] = values
                plans[i] = ColumnPlan(plan.to_numpy, PLAIN)
            if first < len(arr):
                self.leading.discard(i)
        return cached

    def _parsed_times(self, arrays, first_row):
        parsed = {}
        for i in sorted(self.text_columns):
            if not self.source._type_inference and i != self.time:
                continue
            try:
                parsed[i] = parse_times(arrays[i], self.source._timestamp_format)
            except TimeParseError as ex:
                param = "time_field" if i == self.time else "parse_dates"
                raise CsvError(
                    f"{self.source.name}: {self.file.where(first_row + ex.index)}, {param} "
                    f"{self.file.column_name(i)!r}: {ex}"
                ) from None
        return parsed

    def _columns(self, arrays, plans, cached, parsed, fields):
        """`Columns` named as `fields` ((name, column index) pairs), parsed times replacing text."""
        names = [name for name, _ in fields]
        out_arrays = []
        out_plans = {}
        cache = {}
        objects = False
        for name, i in fields:
            times = parsed.get(i)
            if times is not None:
                out_arrays.append(times.column())
                out_plans[name] = times.plan()
                if times.objects is not None:
                    cache[name] = times.objects
                    objects = True
            else:
                out_arrays.append(arrays[i])
                out_plans[name] = plans[i]
                if i in cached:
                    cache[name] = cached[i]
        record_batch = pa.RecordBatch.from_arrays(out_arrays, names=names)
        data = ArrowColumnData(record_batch, out_plans, cache, where=self.file.path)
        converters = {name: plan.kind for name, plan in out_plans.items() if plan.kind is not PLAIN}
        if objects:
            # times of mixed zones are Python objects, which the record batch cannot hold
            data = {name: data[name] for name in names}
        return Columns(data, record_batch.num_rows, converters=converters)


def _col(i):
    return f"c{i}"


def _plan(arr):
    """How a CSV column becomes values: an int column with empty fields holds ints and NaN."""
    typ = arr.type
    if pa.types.is_integer(typ) and arr.null_count:
        return ColumnPlan(
            lambda a: a.cast(pa.float64()).to_numpy(zero_copy_only=False), IntOrNaNKind(typ), False
        )
    return column_plan(typ, int_nulls=None)


def _index(field, names, width, param, path, step="CSVSource"):
    """The column index (or list of indexes) of a field given by name or index."""
    if field is None:
        return None
    if isinstance(field, list):
        return [_index(f, names, width, param, path, step) for f in field]
    if isinstance(field, int):
        if field >= width:
            raise IndexError(f"{step}: {param} {field} is out of range for {path}, which has {width} fields")
        return field
    positions = [i for i, name in enumerate(names) if name == field]
    if not positions:
        raise KeyError(f"{step}: {param} {field!r} is not a field of {path} (fields: {names})")
    return positions[-1]
