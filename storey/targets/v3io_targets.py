"""Targets that write to V3IO services: StreamTarget (a V3IO stream, through the storage driver)
and TSDBTarget (a TSDB table, through a v3io-frames client).

Both select what they write with the `columns` convention of the other targets: 'field',
'name=field', and the metadata '$key', '$time' and '$id' ('name=$time' renames).
"""

import asyncio
import json
import numbers
from datetime import datetime
from itertools import chain

import numpy as np
import pandas as pd

from ..core.checks import check_positive_int, check_storage_options
from ..drivers.v3io_driver import split_v3io_path
from ..dtypes.event import V3ioError
from ..engine.graph import Flow
from .buffering import BufferedFileTarget
from .file_targets.column_spec import check_positive, flush_seconds, merge_inferred, parse_columns
from .file_targets.values import first_body_fields, time_info

__all__ = ["StreamTarget", "TSDBTarget"]

# Values JSON cannot hold (datetimes, sets, bytes, NumPy scalars) are written as their str().
_JSON = json.JSONEncoder(default=str)

# v3io-frames' `if_exists` value that keeps an existing table.
_FRAMES_IF_EXISTS_IGNORE = 1


def _optional_str(step, param, value):
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{step}: {param} must be a string, got {type(value).__name__}: {value!r}")
    return value


def _v3io_path(step, param, path, what):
    """(container, path inside it) of a V3IO path 'container/path', '/container/path' or
    'v3io:///container/path'."""
    if not isinstance(path, str) or not path.strip("/"):
        raise TypeError(f"{step}: {param} must be a non-empty string, got {path!r}")
    container, inner = split_v3io_path(path)
    if inner == "/":
        raise ValueError(f"{step}: {param} {path!r} names no {what}: expected 'container/path/to/{what}'")
    return container, inner


def _metadata(batch, meta):
    if meta == "key":
        return list(batch.keys)
    if meta == "time":
        return batch.time_values
    return batch.ids


class StreamTarget(Flow):
    """Writes all incoming events into a V3IO stream.

    The stream is created, with `shard_count` shards and `retention_period_hours`, if it does not
    exist. Each event becomes one record: a dict body is written as JSON of the selected columns
    (a field the event lacks, or holds as None, is left out; values JSON cannot hold, such as
    times, are written as their text); with no columns, a str or bytes body is written as it is.
    Each shard receives its records in the order of the events, in requests of at most
    `batch_size` records. Events are passed on once written.

    :param storage: Database driver: a `V3ioDriver`.
    :param stream_path: Path to the V3IO stream: 'container/path/to/stream' (or
        '/container/...', 'v3io:///container/...').
    :param sharding_func: Function (Event => int) choosing the shard of each event's record: the
        result modulo shard_count. Optional. Defaults to None: a random shard per record.
    :param batch_size: Batch size for each write request. Defaults to 8.
    :param columns: Fields to be written to stream. Will be extracted from events when an event is
        a dictionary (other types will be written as is). Use = notation for renaming fields (e.g.
        write_this=event_field). Use $ notation to refer to metadata ($key, event_time=$time).
        Optional. Defaults to None (will be inferred if event is dictionary).
    :param infer_columns_from_data: Whether to infer columns from the first event, when events are
        dictionaries. If True, columns will be inferred from data and used in place of explicit
        columns list if none was provided, or appended to the provided list. Optional. Defaults to
        False if columns is provided, True otherwise.
    :param shard_count: If stream doesn't exist, it will be created with this number of shards.
        Defaults to 1.
    :param retention_period_hours: If stream doesn't exist, it will be created with this
        retention time in hours. Defaults to 24.
    :param name: Name of this step, as it should appear in logs. Defaults to class name
        (StreamTarget).
    """

    _may_suspend = True

    def __init__(
        self,
        storage,
        stream_path: str,
        sharding_func=None,
        batch_size: int = 8,
        columns=None,
        infer_columns_from_data: bool | None = None,
        shard_count: int = 1,
        retention_period_hours: int = 24,
        **kwargs,
    ):
        storage_options = kwargs.pop("storage_options", None)
        super().__init__(**kwargs)
        step = self.name
        if not callable(getattr(storage, "_put_records", None)):
            raise TypeError(
                f"{step}: storage must be a V3ioDriver (a driver that writes streams), got "
                f"{type(storage).__name__}: {storage!r}"
            )
        if sharding_func is not None and not callable(sharding_func):
            raise TypeError(
                f"{step}: sharding_func must be callable, got "
                f"{type(sharding_func).__name__}: {sharding_func!r}"
            )
        check_storage_options(step, storage_options)
        self._storage = storage
        self._container, self._path = _v3io_path(step, "stream_path", stream_path, "stream")
        self._sharding_func = sharding_func
        self._batch_size = check_positive_int(step, "batch_size", batch_size)
        self._shard_count = check_positive_int(step, "shard_count", shard_count)
        self._retention_period_hours = (
            None
            if retention_period_hours is None
            else check_positive_int(step, "retention_period_hours", retention_period_hours)
        )
        self._columns_param = parse_columns(step, "columns", columns, allow_types=True) or []
        if infer_columns_from_data is None:
            infer_columns_from_data = not self._columns_param
        self._infer = bool(infer_columns_from_data)
        self._init()

    def _init(self):
        self._specs = None
        self._created = False
        self._rng = np.random.default_rng()

    # ---- the stream
    async def _ensure_stream(self):
        if not self._created:
            await self._storage._create_stream(
                self._container, self._path, self._shard_count, self._retention_period_hours
            )
            self._created = True

    async def _do(self, batch):
        await self._ensure_stream()
        if self._specs is None:
            try:
                self._specs = self._resolve_columns(batch)
            except TypeError as ex:
                ex.add_note(f"raised in step {self.name}")
                raise
        texts, error = self._records(batch)
        shards, shard_error = self._shards(batch, len(texts))
        if shard_error is not None:
            error = shard_error
        written = len(shards)
        if written:
            await self._put(shards, texts[:written])
            await self._emit(batch.slice(0, written))
        if error is not None:
            error.add_note(f"raised in step {self.name}")
            raise error

    async def _on_terminate(self):
        try:
            if getattr(self._runtime, "error", None) is None:
                # as storey 1.0.6: the stream exists after a run, even one without events
                await self._ensure_stream()
        finally:
            await self._storage._end_flow()

    async def _put(self, shards, texts):
        by_shard = {}
        for shard, text in zip(shards, texts, strict=True):
            by_shard.setdefault(shard, []).append(text)
        results = await asyncio.gather(
            *(self._put_shard(shard, records) for shard, records in by_shard.items()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                result.add_note(f"raised in step {self.name}")
                raise result

    async def _put_shard(self, shard, texts):
        size = self._batch_size
        for start in range(0, len(texts), size):
            records = [{"shard_id": shard, "data": text} for text in texts[start : start + size]]
            try:
                await self._storage._put_records(self._container, self._path, records)
            except V3ioError as ex:
                # of this request, those the driver could not write; the later ones were not sent
                left = len(texts) - start - len(records) + getattr(ex, "unwritten", len(records))
                raise V3ioError(
                    f"{self.name}: {left} of the {len(texts)} records of events for shard {shard} were not "
                    f"written to stream {self._container}{self._path} (the events before them were): {ex}"
                ) from ex

    # ---- records
    def _resolve_columns(self, batch):
        specs = self._columns_param
        if not self._infer:
            return specs
        columns = batch.columns
        first = None if columns is not None else batch.bodies_to_read()[0]
        if columns is None and not isinstance(first, dict | list):
            return specs  # a body written as it is: nothing to infer
        return merge_inferred(specs, first_body_fields(self.name, batch), unique=True)

    def _records(self, batch):
        """The record data of the batch's events, up to the first that cannot be written, and the
        error that stopped there (or None)."""
        specs = self._specs
        names = [spec.name for spec in specs]
        meta = {spec.meta: _metadata(batch, spec.meta) for spec in specs if spec.meta is not None}
        columns = batch.columns
        if columns is not None:
            values = [
                meta[spec.meta] if spec.meta is not None else columns.row_values(spec.field) for spec in specs
            ]
            rows = zip(*values, strict=True) if values else [()] * batch.n
            return [_record_text(names, row) for row in rows], None
        texts = []
        for i, body in enumerate(batch.bodies_to_read()):
            if type(body) is dict:
                row = [body.get(spec.field) if spec.meta is None else meta[spec.meta][i] for spec in specs]
                texts.append(_record_text(names, row))
            elif isinstance(body, str | bytes) and not specs:
                texts.append(body)
            else:
                return texts, TypeError(
                    f"{self.name}: cannot write an event body of type {type(body).__name__} to a stream: "
                    "dict bodies are written as JSON of their columns; str or bytes bodies, with no "
                    "columns, as they are"
                )
        return texts, None

    def _shards(self, batch, count):
        """The shard of each of the first `count` events, and the error that stopped the
        sharding function before them (or None)."""
        shard_count = self._shard_count
        fn = self._sharding_func
        if fn is None:
            if shard_count == 1:
                return [0] * count, None
            return self._rng.integers(0, shard_count, count).tolist(), None
        shards = []
        try:
            for i in range(count):
                shard = fn(batch.event(i))
                if isinstance(shard, bool) or not isinstance(shard, numbers.Integral):
                    raise TypeError(
                        f"{self.name}: sharding_func must return a shard id (an int), got "
                        f"{type(shard).__name__}: {shard!r}"
                    )
                shards.append(int(shard) % shard_count)
        except Exception as ex:
            return shards, ex
        return shards, None


def _record_text(names, row):
    return _JSON.encode({name: value for name, value in zip(names, row, strict=True) if value is not None})


# ---- TSDB


def _value_kind(value):
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, numbers.Integral):
        return "int"
    if isinstance(value, numbers.Real):
        return "float"
    if isinstance(value, datetime | np.datetime64):
        return "time"
    return "other"


def _typed(values):
    """Row values as a typed array, as a DataFrame built from the rows would type them: ints
    int64 (float64 once one is missing), floats float64, bools bool, times datetime64[ns] (in
    their zone), anything else (text included) object, with None where a value is missing."""
    if not isinstance(values, list):
        return values
    kinds = {_value_kind(v) for v in values if v is not None}
    missing = any(v is None for v in values)
    try:
        if kinds == {"int"} and not missing:
            return np.array(values, dtype=np.int64)
        if kinds and kinds <= {"int", "float"}:
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        if kinds == {"bool"} and not missing:
            return np.array(values, dtype=bool)
        if kinds == {"time"}:
            return pd.DatetimeIndex(values).as_unit("ns")
    except (OverflowError, TypeError, ValueError):
        pass  # ints beyond int64, times in several zones: kept as objects
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _as_index(values, name):
    typed = _typed(values)
    if isinstance(typed, pd.DatetimeIndex):
        return typed.rename(name)
    return pd.Index(typed, dtype=typed.dtype, name=name)


def _concat(parts):
    """One column's values from several chunks: a list, a NumPy array or a DatetimeIndex."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    if isinstance(first, pd.DatetimeIndex) and all(isinstance(p, pd.DatetimeIndex) for p in parts):
        if all(p.tz == first.tz for p in parts):
            return first.append(list(parts[1:]))
    if isinstance(first, np.ndarray) and all(
        isinstance(p, np.ndarray) and p.dtype == first.dtype for p in parts
    ):
        return np.concatenate(parts)
    return list(chain.from_iterable(p if isinstance(p, list) else p.tolist() for p in parts))


class _Chunk:
    """The values of a TSDBTarget's columns (index columns first) for some events."""

    __slots__ = ("columns", "n")

    def __init__(self, columns, n):
        self.columns = columns
        self.n = n

    def __len__(self):
        return self.n

    def take(self, positions):
        indices = positions.tolist()
        return _Chunk(
            [c.take(positions) if not isinstance(c, list) else [c[i] for i in indices] for c in self.columns],
            len(indices),
        )


class TSDBTarget(BufferedFileTarget):
    """Writes incoming events to TSDB table.

    Events are written in batches (see max_events and flush_after_seconds), each as one
    DataFrame indexed by the time column and then the index columns (the metric labels), through
    a v3io-frames client. The table is created first (if it does not exist) when `rate` is given.
    Events are passed on as they arrive.

    :param path: Path to TSDB table: 'container/path/to/table' (or '/container/...',
        'v3io:///container/...').
    :param time_col: Name of the time column. Optional. Defaults to '$time' (the event time, in a
        column named 'time'; 'name=$time' names it).
    :param columns: List of column names to be passed to the DataFrame constructor. Use =
        notation for renaming fields (e.g. write_this=event_field). Use $ notation to refer to
        metadata ($key, event_time=$time).
    :param infer_columns_from_data: Whether to infer columns from the first event, when events are
        dictionaries. If True, columns will be inferred from data and used in place of explicit
        columns list if none was provided, or appended to the provided list. Optional. Defaults to
        False if columns is provided, True otherwise.
    :param index_cols: List of column names to be used for metric labels.
    :param v3io_frames: Frames service url.
    :param access_key: Access key to the system.
    :param rate: TSDB table sample rate.
    :param aggr: Server-side aggregations for this TSDB table (e.g. 'sum,count').
    :param aggr_granularity: Granularity of server-side aggregations for this TSDB table (e.g. '1h').
    :param frames_client: Frames instance. Allows usage of an existing frames client (any object
        with the `create` and `write` methods of `v3io_frames.Client`). When not given, the
        v3io-frames package must be installed.
    :param max_events: Maximum number of events to write at a time. If None (default), all events
        will be written on flow termination, or after flush_after_seconds (if set).
    :param flush_after_seconds: Maximum number of seconds to hold events before they are written.
        `timeout_secs` is accepted as another name for it.
    :param key: batch events by key ('$key' or a body field name): each key's events are written
        together.
    :param name: Name of this step, as it should appear in logs. Defaults to class name (TSDBTarget).
    """

    def __init__(
        self,
        path: str,
        time_col: str = "$time",
        columns=None,
        infer_columns_from_data: bool | None = None,
        index_cols=None,
        v3io_frames: str | None = None,
        access_key: str | None = None,
        rate: str = "",
        aggr: str = "",
        aggr_granularity: str | None = None,
        frames_client=None,
        **kwargs,
    ):
        max_events = kwargs.pop("max_events", None)
        flush_after_seconds = kwargs.pop("flush_after_seconds", None)
        timeout_secs = kwargs.pop("timeout_secs", None)
        key = kwargs.pop("key", None)
        storage_options = kwargs.pop("storage_options", None)
        step = kwargs.get("name") or type(self).__name__
        flush_after_seconds = flush_seconds(step, flush_after_seconds, timeout_secs)
        if max_events is not None:
            check_positive_int(step, "max_events", max_events)
        check_positive(step, "flush_after_seconds", flush_after_seconds)
        if (
            key is not None
            and key != "$key"
            and not (isinstance(key, str) and key and not key.startswith("$"))
        ):
            raise ValueError(f"{step}: key must be '$key' or a body field name, got {key!r}")
        check_storage_options(step, storage_options)
        container, table = _v3io_path(step, "path", path, "table")
        if not isinstance(time_col, str) or not time_col:
            raise TypeError(f"{step}: time_col must be a non-empty string, got {time_col!r}")
        self._time_spec = parse_columns(step, "time_col", time_col)[0]
        self._index_param = parse_columns(step, "index_cols", index_cols) or []
        self._columns_param = parse_columns(step, "columns", columns) or []
        if infer_columns_from_data is None:
            infer_columns_from_data = not self._columns_param
        for param, value in (
            ("v3io_frames", v3io_frames),
            ("access_key", access_key),
            ("rate", rate),
            ("aggr", aggr),
            ("aggr_granularity", aggr_granularity),
        ):
            _optional_str(step, param, value)
        if frames_client is None:
            frames_client = _frames_client(step, v3io_frames, access_key, container)
        for method in ("create", "write"):
            if not callable(getattr(frames_client, method, None)):
                raise TypeError(
                    f"{step}: frames_client must be a v3io-frames client (with create() and write()), "
                    f"got {type(frames_client).__name__}: {frames_client!r}"
                )
        super().__init__(max_events=max_events, flush_after_seconds=flush_after_seconds, **kwargs)
        self._table_path = table
        self._infer = bool(infer_columns_from_data)
        self._key = key
        self._rate = rate or ""
        self._aggr = aggr or ""
        self._aggr_granularity = aggr_granularity or ""
        self._client = frames_client
        self._specs = None
        self._created = False

    def _init(self):
        super()._init()
        self._specs = None
        self._created = False

    # ---- columns
    def _resolve_columns(self, batch):
        index = [self._time_spec, *self._index_param]
        data = self._columns_param
        if self._infer:
            data = merge_inferred(data, first_body_fields(self.name, batch), unique=True)
        taken = {spec.name for spec in index}
        if self._time_spec.meta is None:
            taken.add(self._time_spec.field)
        return index + [spec for spec in data if spec.name not in taken]

    def _prepare(self, batch):
        if self._specs is None:
            self._specs = self._resolve_columns(batch)
        specs = self._specs
        columns = batch.columns
        if columns is not None:
            values = [self._meta(batch, s.meta) if s.meta else _field_values(columns, s.field) for s in specs]
        else:
            values = self._row_values(batch.bodies_to_read(), specs)
            for j, spec in enumerate(specs):
                if spec.meta is not None:
                    values[j] = self._meta(batch, spec.meta)
        times = values[0]
        if isinstance(times, list) and any(t is None for t in times):
            raise ValueError(f"{self.name}: an event has no time column {self._time_spec.field!r}")
        return _Chunk(values, batch.n)

    def _row_values(self, rows, specs):
        """The values of the columns that are not metadata, as lists (None for the others)."""
        fields = [(j, spec.field) for j, spec in enumerate(specs) if spec.meta is None]
        values = [None] * len(specs)
        for j, _ in fields:
            values[j] = []
        for body in rows:
            if isinstance(body, dict):
                for j, field in fields:
                    values[j].append(body.get(field))
            elif isinstance(body, list):
                # list elements fill the columns that are not metadata, index columns first
                items = iter(body)
                for j, _ in fields:
                    values[j].append(next(items, None))
            else:
                raise TypeError(
                    f"{self.name}: Writer supports only events of type dict or list, got "
                    f"{type(body).__name__}: {body!r}"
                )
        return values

    @staticmethod
    def _meta(batch, meta):
        if meta == "time":
            tz, _ = time_info(batch)
            index = pd.DatetimeIndex(np.asarray(batch.times, dtype=np.int64).view("datetime64[ns]"))
            return index if tz is None else index.tz_localize("UTC").tz_convert(tz)
        return _metadata(batch, meta)

    def _groups(self, batch):
        if self._key is None:
            return None
        if self._key == "$key":
            values = list(batch.keys)
        else:
            values = batch.field(self._key).tolist()
        labels = [repr(v) if isinstance(v, list | dict) else v for v in values]
        codes, groups = pd.factorize(pd.Series(labels, dtype=object), use_na_sentinel=False)
        return list(groups), codes

    # ---- writing
    def _frame(self, chunks):
        specs = self._specs
        count = 1 + len(self._index_param)
        columns = [_concat([chunk.columns[j] for chunk in chunks]) for j in range(len(specs))]
        levels = [
            _as_index(values, spec.name) for spec, values in zip(specs[:count], columns[:count], strict=True)
        ]
        data = {}
        for spec, values in zip(specs[count:], columns[count:], strict=True):
            typed = _typed(values)
            data[spec.name] = pd.Series(typed, dtype=typed.dtype, name=spec.name, copy=False)
        frame = pd.DataFrame(data) if data else pd.DataFrame(index=pd.RangeIndex(len(levels[0])))
        frame.index = levels[0] if len(levels) == 1 else pd.MultiIndex.from_arrays(levels)
        return frame

    def _write(self, group, chunks):
        try:
            frame = self._frame(chunks)
            if not self._created:
                if self._rate:
                    self._client.create(
                        "tsdb",
                        table=self._table_path,
                        if_exists=_FRAMES_IF_EXISTS_IGNORE,
                        rate=self._rate,
                        aggregates=self._aggr,
                        aggregation_granularity=self._aggr_granularity,
                    )
                self._created = True
            self._client.write("tsdb", self._table_path, frame)
        except Exception as ex:
            ex.add_note(f"raised in step {self.name} while writing to TSDB table {self._table_path}")
            raise


def _field_values(columns, field):
    """A body field held in columns: a NumPy array when its values are plain numbers, else row
    values (None where an event lacks the field)."""
    arr = columns.data.get(field)
    if arr is None:
        return [None] * columns.n
    absent = columns.absent_rows(field)
    if field not in columns.converters:
        kind = arr.dtype.kind
        if kind == "f":
            if absent is None:
                return arr.astype(np.float64, copy=False)
            return np.where(absent, np.nan, arr).astype(np.float64)
        if kind in "iu" and (kind == "i" or arr.dtype.itemsize < 8):
            if absent is None:
                return arr.astype(np.int64, copy=False)
            return np.where(absent, np.nan, arr).astype(np.float64)
        if kind == "b" and absent is None:
            return arr
    return columns.row_values(field)


def _frames_client(step, address, token, container):
    try:
        import v3io_frames
    except ImportError as ex:
        raise ImportError(
            f"{step}: writing to TSDB needs the v3io-frames package (pip install v3io-frames), "
            "or a client passed as frames_client"
        ) from ex
    return v3io_frames.Client(address=address, token=token, container=container)
