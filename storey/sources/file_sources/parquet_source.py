"""ParquetSource: Parquet files, directories and partitioned datasets replayed in record batches."""

import json
import re
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.fs as pafs

from ...core.checks import check_storage_options
from ...core.lazy import LazyModule
from ...core.times import to_ns
from .arrow_input import column_plan, columns_from_arrow
from .dataframe_source import BATCH_ROWS, DataframeSource
from .event_fields import EventFields
from .locations import arrow_filesystem, file_type
from .parquet_file import ParquetFileDataset
from .source_checks import check_paths

ds = LazyModule("pyarrow.dataset")
_INDEX_LEVEL = re.compile(r"__index_level_\d+__")
# Hive partition names that hold the parts of a time, coarsest first.
_TIME_PARTS = ("year", "month", "day", "hour", "minute", "second")


class ParquetSource(DataframeSource):
    """Reads Parquet files as input source for a flow.

    A path may be a file, or a directory holding a dataset (its files read in path order, hive
    partition columns such as `year=2020` coming back as body fields). Files are read in record
    batches, never whole. Every path may be an fsspec URL (`storage_options` are passed to fsspec).

    :param paths: paths to Parquet files
    :param columns: list, default=None. If not None, only these columns will be read from the file.
    :param start_filter: datetime. If not None, the results will be filtered by partitions and
        'filter_column' > start_filter. Default is None
    :param end_filter: datetime. If not None, the results will be filtered by partitions
        'filter_column' <= end_filter. Default is None
    :param filter_column: Optional. if not None, the results will be filtered by this column and
        before and/or after
    :param key_field: column to be used as key for events. can be list of columns
    :param time_field: column to be used as time for events.
    :param id_field: column to be used as ID for events.
    :param time_unit: the unit of an integer time column: 's' (epoch seconds, the default),
        'ms', 'us' or 'ns'. Not in storey 1.0.6, which reads integers as epoch seconds.
    """

    def __init__(
        self,
        paths,
        columns=None,
        start_filter=None,
        end_filter=None,
        filter_column=None,
        storage_options=None,
        **kwargs,
    ):
        super().__init__([], **kwargs)
        self._paths = check_paths(self.name, paths)
        if isinstance(columns, str):
            columns = [columns]
        elif columns is not None:
            columns = list(columns)
            for c in columns:
                if not isinstance(c, str):
                    raise TypeError(f"{self.name}: columns must be a list of column names, got an item {c!r}")
        self._columns = columns
        for param, value in (("start_filter", start_filter), ("end_filter", end_filter)):
            if value is not None and not isinstance(value, datetime):
                raise TypeError(
                    f"{self.name}: {param} must be a datetime, got {type(value).__name__} {value!r}"
                )
        if (start_filter is not None or end_filter is not None) and filter_column is None:
            raise TypeError(f"{self.name}: filter_column is required when passing start_filter/end_filter")
        if filter_column is not None and not isinstance(filter_column, str):
            raise TypeError(f"{self.name}: filter_column must be a column name, got {filter_column!r}")
        self._start = start_filter
        self._end = end_filter
        self._filter_column = filter_column
        self._storage_options = check_storage_options(self.name, storage_options)

    def _batches(self, ids):
        if self._columns == []:
            return
        for path in self._paths:
            yield from self._read(path, ids)

    def _read(self, path, ids):
        dataset = self._open(path)
        schema = dataset.schema
        try:
            schema.names  # noqa: B018 - decoded here, so that a name that is not text names the file
        except UnicodeDecodeError as ex:
            raise ValueError(
                f"{self.name}: cannot read {path}: a column name is not UTF-8 text ({ex})"
            ) from None
        names = self._projection(schema, path)
        if not names:
            return
        row_filter = self._row_filter(dataset, path)
        pandas_types = _pandas_types(schema)
        nulls = _int_columns_with_nulls(dataset, names, row_filter)
        plans = {
            name: column_plan(schema.field(name).type, nulls.get(name, True), pandas_types.get(name))
            for name in names
        }
        fields = self._fields_for(names, path)
        batches = dataset.to_batches(
            columns=names,
            filter=row_filter,
            batch_size=BATCH_ROWS,
            batch_readahead=4,
            fragment_readahead=2,
        )
        rows_read = 0
        for record_batch in _reading(batches, self.name, path):
            if record_batch.num_rows:
                columns = columns_from_arrow(record_batch, plans, where=path)
                yield fields.batch(columns, ids, path, first_row=rows_read + 1)
                rows_read += record_batch.num_rows

    def _open(self, path):
        fs, inner = arrow_filesystem(path, self._storage_options)
        kind = file_type(fs, inner, path, self.name)
        try:
            if kind != pafs.FileType.Directory and self._start is None and self._end is None:
                return ParquetFileDataset(inner, fs)
        except (pa.ArrowException, OSError) as ex:
            raise _with_path(ex, self.name, path) from ex
        # pre-buffering reads a file's row groups ahead without bound (a whole 2 GB file): off
        options = ds.ParquetFragmentScanOptions(pre_buffer=False)
        fmt = ds.ParquetFileFormat(default_fragment_scan_options=options)
        try:
            if kind == pafs.FileType.Directory:
                return ds.dataset(inner, filesystem=fs, format=fmt, partitioning="hive")
            return ds.dataset(inner, filesystem=fs, format=fmt)
        except (pa.ArrowException, OSError) as ex:
            raise _with_path(ex, self.name, path) from ex

    def _projection(self, schema, path):
        index_levels = {name for name in schema.names if _INDEX_LEVEL.fullmatch(name)}
        if self._columns is None:
            return [name for name in schema.names if name not in index_levels]
        for name in self._columns:
            if name not in schema.names:
                raise pa.ArrowInvalid(
                    f"{self.name}: column {name!r} is not in {path} (columns: {schema.names})"
                )
        # pandas keeps a named index whatever the columns asked for
        index = [n for n in _pandas_index_columns(schema) if n in schema.names and n not in index_levels]
        return list(dict.fromkeys(self._columns + index))

    def _fields_for(self, names, path):
        for param, value in (
            ("key_field", self._key_field),
            ("time_field", self._time_field),
            ("id_field", self._id_field),
        ):
            for name in value if isinstance(value, list) else [value]:
                if name is not None and name not in names:
                    raise KeyError(
                        f"{self.name}: {param} {name!r} is not a column of {path} (columns: {names})"
                    )
        return EventFields(
            key=self._key_field,
            time=self._time_field,
            id=self._id_field,
            time_unit=self._time_unit,
            step=self.name,
            on_skipped=self._count_skipped,
        )

    def _row_filter(self, dataset, path):
        """The dataset filter for start_filter < filter_column <= end_filter, with partition
        pruning when the dataset is partitioned by year/month/day/..."""
        if self._start is None and self._end is None:
            return None
        column = self._filter_column
        schema = dataset.schema
        if column not in schema.names:
            raise pa.ArrowInvalid(f"{self.name}: filter_column {column!r} is not a column of {path}")
        typ = schema.field(column).type
        if not pa.types.is_timestamp(typ):
            raise TypeError(f"{self.name}: filter_column {column!r} of {path} holds {typ}, not timestamps")
        field = ds.field(column)
        expr = None
        if self._start is not None:
            expr = field > _bound(self._start, typ)
        if self._end is not None:
            upper = field <= _bound(self._end, typ)
            expr = upper if expr is None else expr & upper
        parts = _time_partitions(dataset)
        if parts:
            expr = expr & _partition_range(parts, self._start, self._end)
        return expr


def _reading(batches, step, path):
    """The record batches, with read errors naming the file."""
    try:
        yield from batches
    except (pa.ArrowException, OSError) as ex:
        raise _with_path(ex, step, path) from ex


def _with_path(ex, step, path):
    try:
        return type(ex)(f"{step}: cannot read {path}: {ex}")
    except Exception:
        return ex


def _bound(value, typ):
    """A filter bound as a scalar of the column's type (naive datetimes are UTC)."""
    ns = pa.scalar(to_ns(value), pa.timestamp("ns", tz=typ.tz))
    return ns.cast(typ, safe=False)


def _time_partitions(dataset):
    """The leading partition fields that are year, month, day, ... in that order."""
    partitioning = getattr(dataset, "partitioning", None)
    if partitioning is None:
        return []
    names = partitioning.schema.names
    parts = []
    for name, expected in zip(names, _TIME_PARTS, strict=False):
        if name != expected:
            break
        parts.append(name)
    return parts


def _partition_range(parts, start, end):
    """Partitions whose time span meets (start, end]: those from the one holding `start` up to
    the one holding `end`, comparing (year, month, ...) tuples."""
    expr = None
    if start is not None:
        expr = _tuple_compare(parts, _time_tuple(start, len(parts)), lower=True)
    if end is not None:
        upper = _tuple_compare(parts, _time_tuple(end, len(parts)), lower=False)
        expr = upper if expr is None else expr & upper
    return expr


def _time_tuple(value, n):
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return (value.year, value.month, value.day, value.hour, value.minute, value.second)[:n]


def _tuple_compare(parts, values, lower):
    """parts >= values (lower) or parts <= values, lexicographically."""
    field = ds.field(parts[-1])
    expr = field >= values[-1] if lower else field <= values[-1]
    for name, value in zip(reversed(parts[:-1]), reversed(values[:-1]), strict=True):
        f = ds.field(name)
        strict = f > value if lower else f < value
        expr = strict | ((f == value) & expr)
    return expr


def _pandas_metadata(schema):
    meta = schema.metadata or {}
    raw = meta.get(b"pandas")
    if raw is None:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {}


def _pandas_index_columns(schema):
    return [c for c in _pandas_metadata(schema).get("index_columns", []) if isinstance(c, str)]


def _pandas_types(schema):
    """Field name -> the pandas dtype name its metadata records, for pandas' nullable dtypes."""
    out = {}
    for column in _pandas_metadata(schema).get("columns", []):
        numpy_type = column.get("numpy_type")
        if numpy_type in _NULLABLE_TYPES:
            out[column.get("field_name")] = numpy_type
    return out


_NULLABLE_TYPES = {f"{p}Int{b}" for p in ("", "U") for b in (8, 16, 32, 64)} | {"boolean", "string"}


def _int_columns_with_nulls(dataset, names, row_filter):
    """For each integer column among `names`: whether it has a null in what is read (pandas then
    reads the whole column as floats). Row-group statistics answer without reading data; a
    filtered read, or a file without statistics, counts the nulls of the rows it reads."""
    schema = dataset.schema
    partitioning = getattr(dataset, "partitioning", None)
    partition_names = set() if partitioning is None else set(partitioning.schema.names)
    ints = [n for n in names if pa.types.is_integer(schema.field(n).type)]
    out = {n: False for n in ints if n in partition_names}
    ints = [n for n in ints if n not in partition_names]
    if not ints:
        return out
    null_counts = dict.fromkeys(ints, 0)
    unknown = set()
    for fragment in dataset.get_fragments(filter=row_filter):
        metadata = fragment.metadata
        positions = {metadata.schema.column(i).name: i for i in range(metadata.num_columns)}
        for name in ints:
            i = positions.get(name)
            if i is None:
                null_counts[name] += metadata.num_rows
                continue
            for g in range(metadata.num_row_groups):
                stats = metadata.row_group(g).column(i).statistics
                if stats is None or not stats.has_null_count:
                    unknown.add(name)
                else:
                    null_counts[name] += stats.null_count
    to_count = []
    for name in ints:
        if name in unknown or (null_counts[name] and row_filter is not None):
            to_count.append(name)
        else:
            out[name] = bool(null_counts[name])
    if to_count:
        found = dict.fromkeys(to_count, False)
        for batch in dataset.to_batches(columns=to_count, filter=row_filter):
            for name in to_count:
                if batch.column(name).null_count:
                    found[name] = True
        out.update(found)
    return out
