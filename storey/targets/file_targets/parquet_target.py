"""ParquetTarget: events written as Parquet files, one file or a partitioned directory."""

import uuid
from datetime import datetime
from itertools import chain

import numpy as np
import pyarrow as pa

from ...core.checks import check_storage_options
from ...core.storage import get_filesystem, join
from ..buffering import BufferedFileTarget
from .arrow_output import (
    finalize,
    list_positions,
    row_values,
    same_time_chunks,
    same_time_types,
    spec_array,
    values_array,
)
from .column_spec import (
    DEFAULT_PARTITIONS,
    check_positive,
    flush_seconds,
    merge_inferred,
    parse_columns,
    parse_partition_cols,
)
from .pandas_metadata import with_pandas_metadata
from .parquet_files import BackgroundWrites, DirectoryOutput, StreamedFile, write_file
from .partitions import partition_groups
from .values import body_rows, first_body_fields

# Events per file when writing to a directory and max_events is not given (as the reference).
DEFAULT_MAX_EVENTS = 10000
# Events gathered before a part of a single file is written.
SINGLE_FILE_PART_EVENTS = 131072


class ParquetTarget(BufferedFileTarget):
    """Writes incoming events to parquet files.

    :param path: Output path. Can be either a file or directory. A path ending in .parquet or .pq
        is written as a single file, which appears under its name when the flow terminates without
        an error; any other path is a directory of files, one per partition and write, marked
        complete by an empty `_SUCCESS` file written last. When the flow fails, the files it wrote
        are removed.
    :param index_cols: Index columns for writing the data. Use = notation for renaming fields (e.g.
        write_this=event_field). Use $ notation to refer to metadata ($key, event_time=$time). If
        None (default), no index is set.
    :param columns: Fields to be written to parquet. Will be extracted from events when an event is a
        dictionary (lists will be written as is). Use = notation for renaming fields (e.g.
        write_this=event_field). Use $ notation to refer to metadata ($key, event_time=$time). Can
        be a list of (name, type) tuples in order to set the schema explicitly, e.g.
        ('my_field', 'str'). Supported types: str, int32, int, float32, float, bool, datetime.
        Optional. Defaults to None (will be inferred if event is dictionary).
    :param partition_cols: Columns by which to partition the data into directories. The following
        metadata columns are also supported: $key, $date (e.g. 2020-02-09), $year, $month, $day,
        $hour, $minute, $second. A column may be specified as a tuple, such as ('$key', 64), which
        means partitioning by the event key hashed into 64 partitions. If None (the default), the
        data will only be partitioned if the path does not end in .parquet or .pq: then it is
        partitioned by key/year/month/day/hour, where the key is hashed into 256 buckets.
    :param infer_columns_from_data: Whether to infer columns from the first event, when events are
        dictionaries. If True, columns will be inferred from data and used in place of explicit
        columns list if none was provided, or appended to the provided list. Optional. Defaults to
        False if columns is provided, True otherwise.
    :param max_events: Maximum number of events to write at a time (per partition). If None, a
        directory gets a file every 10000 events of a partition and a single file is written at
        termination.
    :param flush_after_seconds: Maximum number of seconds to hold events before they are written.
        `timeout_secs` is accepted as another name for it.
    :param storage_options: Extra options for an fsspec URL (e.g. "s3://..."). Optional.
    :param name: Name of this step, as it should appear in logs. Defaults to class name
        (ParquetTarget).
    """

    _writes_in_a_thread = True

    def __init__(
        self,
        path,
        index_cols=None,
        columns=None,
        partition_cols=None,
        infer_columns_from_data=None,
        max_events=None,
        flush_after_seconds=None,
        **kwargs,
    ):
        given = dict(kwargs)
        max_events_given = max_events
        infer_given = infer_columns_from_data
        timeout_secs = kwargs.pop("timeout_secs", None)
        update_last_written = kwargs.pop("update_last_written", None)
        storage_options = kwargs.pop("storage_options", None)
        kwargs.setdefault("name", "ParquetTarget")
        step = kwargs["name"]
        flush_after_seconds = flush_seconds(step, flush_after_seconds, timeout_secs)
        if not isinstance(path, str) or not path:
            raise TypeError(f"{step}: path must be a non-empty string, got {path!r}")
        check_storage_options(step, storage_options)
        if update_last_written is not None and not callable(update_last_written):
            raise TypeError(f"{step}: update_last_written must be callable, got {update_last_written!r}")
        check_positive(step, "max_events", max_events)
        if max_events is not None and not isinstance(max_events, int):
            raise ValueError(f"{step}: max_events must be an int, got {max_events!r}")
        check_positive(step, "flush_after_seconds", flush_after_seconds)
        self._columns_param = parse_columns(step, "columns", columns, allow_types=True)
        self._index_param = parse_columns(step, "index_cols", index_cols, allow_types=True)
        partitions = parse_partition_cols(step, partition_cols)
        both = sorted(
            {p.field for p in partitions or () if p.field is not None and p.buckets is None}
            & {s.name for s in self._index_param or ()}
        )
        if both:
            raise ValueError(
                f"{step}: columns {both} are in both partition_cols={partition_cols!r} and "
                f"index_cols={index_cols!r}; a column cannot be used both for partitioning and indexing"
            )
        self._single_file = partitions is None and path.endswith((".parquet", ".pq"))
        if partitions is None and not self._single_file:
            partitions = DEFAULT_PARTITIONS
        if max_events is None:
            max_events = SINGLE_FILE_PART_EVENTS if self._single_file else DEFAULT_MAX_EVENTS
        if infer_columns_from_data is None:
            infer_columns_from_data = not self._columns_param
        super().__init__(max_events=max_events, flush_after_seconds=flush_after_seconds, **kwargs)
        self._kwargs = _description(given, path, index_cols, columns, partition_cols, infer_given)
        if max_events_given or not self._single_file:
            self._kwargs["max_events"] = max_events
        if flush_after_seconds is not None or not self._single_file:
            self._kwargs["flush_after_seconds"] = 60 if flush_after_seconds is None else flush_after_seconds
        self._path = path
        self._storage_options = storage_options
        self._update_last_written = update_last_written
        self._last_written = None
        self._partitions = partitions or []
        self._infer = bool(infer_columns_from_data)
        self._fs, self._fs_path = get_filesystem(path, storage_options)
        self._data_specs = None
        self._index_specs = None
        self._list_positions = None
        # a single file is one stream of parts: a write may hold more than max_events events
        self._split_writes = not self._single_file
        self._single_chunks = []
        self._streamed = None
        self._writes = BackgroundWrites()
        self._output = None

    def _init(self):
        super()._init()
        self._last_written = None
        self._data_specs = None
        self._index_specs = None
        self._list_positions = None
        self._single_chunks = []
        self._streamed = None
        self._writes = BackgroundWrites()
        self._output = None

    # ---- columns
    def _resolve_columns(self, batch):
        index = list(self._index_param or [])
        data = list(self._columns_param or [])
        if self._infer:
            data = merge_inferred(self._columns_param, first_body_fields(self.name, batch), unique=True)
        elif not data:
            raise ValueError(
                f"{self.name}: no columns to write: give columns or infer_columns_from_data=True"
            )
        excluded = {spec.name for spec in index}
        excluded |= {p.field for p in self._partitions if p.field is not None and p.buckets is None}
        self._data_specs = [s for s in data if s.name not in excluded]
        self._index_specs = index
        # a list body holds the index columns' values, then the columns' (partition ones included)
        self._list_positions = list_positions(index + data)

    def _prepare(self, batch):
        if self._data_specs is None:
            self._resolve_columns(batch)
        if self._update_last_written is not None:
            self._note_latest_time(batch)
        specs = self._data_specs + self._index_specs
        rows = body_rows(batch)
        if rows is not None:
            _check_bodies(self.name, rows)
            # typed per written file, as the reference infers each file's types from its events
            return RowChunk(row_values(batch, rows, specs, self._list_positions))
        try:
            arrays = [spec_array(batch, spec) for spec in specs]
        except (TypeError, ValueError, pa.ArrowException) as ex:
            ex.add_note(f"raised in step {self.name} while converting event bodies to columns")
            raise
        return pa.Table.from_arrays(arrays, names=[s.name for s in specs])

    def _note_latest_time(self, batch):
        i = int(np.argmax(batch.times))
        if self._last_written is None or batch.times[i] > self._last_written[0]:
            self._last_written = (batch.times[i], batch.time_value(i))

    def _groups(self, batch):
        if not self._partitions:
            return None
        rows = body_rows(batch)
        if rows is not None and any(type(b) is not dict for b in rows):
            for p in self._partitions:
                if p.field is not None and p.field not in self._list_positions:
                    names = [s.name for s in self._index_specs + self._data_specs]
                    raise KeyError(
                        f"{self.name}: partition column {p.field!r} is not one of columns {names}, "
                        "so list bodies do not hold it"
                    )
        return partition_groups(batch, self._partitions, self._list_positions)

    # ---- writing
    def _table(self, chunks):
        specs = self._data_specs + self._index_specs
        tables = _merge_row_chunks(chunks, specs)
        if len(tables) == 1:
            table = tables[0]
        else:
            table = pa.concat_tables(same_time_types(tables), promote_options="permissive")
        columns = [
            finalize(column) if spec.type_name is None else column
            for spec, column in zip(specs, table.columns, strict=True)
        ]
        table = pa.Table.from_arrays(columns, names=table.column_names)
        return with_pandas_metadata(table, [s.name for s in self._index_specs])

    def _write(self, group, chunks):
        if self._single_file:
            if not StreamedFile.supported(self._fs):
                self._single_chunks.extend(chunks)
                return
            if self._streamed is None:
                self._streamed = StreamedFile(self._fs, self._fs_path, self._table)
            self._writes.submit(self._streamed.append, self._table(chunks))
            return
        if self._output is None:
            self._output = DirectoryOutput(self._fs, self._fs_path)
        table = self._table(chunks)
        path = join(self._fs, self._fs_path, group, f"{uuid.uuid4()}.parquet")
        self._writes.submit(self._output.write, path, table)

    def _drain(self):
        self._writes.drain()

    def _finish(self):
        try:
            self._writes.drain()
            if self._streamed is not None:
                streamed, self._streamed = self._streamed, None
                streamed.close()
            if self._single_chunks:
                chunks, self._single_chunks = self._single_chunks, []
                write_file(self._fs, self._fs_path, self._table(chunks))
        except BaseException:
            self._abandon()
            raise
        if self._output is not None:
            self._output.complete()
        if self._update_last_written is not None:
            # once the output is complete, as the reference once it terminated: the path as given
            # (a directory without its last '/'), and the latest event time written;
            # datetime.min tells that nothing was written
            path = self._path if self._single_file else self._path.rstrip("/")
            latest = datetime.min if self._last_written is None else self._last_written[1]
            self._update_last_written(path, latest)

    def _abandon(self):
        self._drop_buffers()
        self._single_chunks = []
        try:
            self._writes.drain()
        except BaseException:  # noqa: BLE001 - the flow's own error is the one reported
            pass
        finally:
            if self._streamed is not None:
                streamed, self._streamed = self._streamed, None
                streamed.discard()
            if self._output is not None:
                self._output.remove()


def _description(given, path, index_cols, columns, partition_cols, infer_columns_from_data):
    """The arguments storey's ParquetTarget records (what `to_dict` and `to_code` show)."""
    described = dict(given)
    if partition_cols is not None:
        described["partition_cols"] = [partition_cols] if isinstance(partition_cols, str) else partition_cols
    described["path"] = path
    for param, value in (
        ("index_cols", index_cols),
        ("columns", columns),
        ("infer_columns_from_data", infer_columns_from_data),
    ):
        if value is not None:
            described[param] = value
    return described


class RowChunk:
    """Output column values of some events with row bodies, as lists (converted when written)."""

    __slots__ = ("columns",)

    def __init__(self, columns):
        self.columns = columns

    def __len__(self):
        return len(self.columns[0]) if self.columns else 0

    def take(self, positions):
        indices = positions.tolist()
        return RowChunk(
            [
                values.take(pa.array(positions))
                if isinstance(values, pa.Array)
                else [values[i] for i in indices]
                for values in self.columns
            ]
        )


def _merge_row_chunks(chunks, specs):
    """The chunks as arrow tables, consecutive row chunks converted together."""
    names = [s.name for s in specs]
    tables = []
    pending = []

    def convert():
        if pending:
            columns = [_concat([c.columns[j] for c in pending]) for j in range(len(specs))]
            arrays = [values_array(values, spec) for values, spec in zip(columns, specs, strict=True)]
            tables.append(pa.Table.from_arrays(arrays, names=names))
            pending.clear()

    for chunk in chunks:
        if isinstance(chunk, RowChunk):
            pending.append(chunk)
        else:
            convert()
            tables.append(chunk)
    convert()
    return tables


def _concat(parts):
    if isinstance(parts[0], pa.Array):
        return parts[0] if len(parts) == 1 else pa.chunked_array(same_time_chunks(parts)).combine_chunks()
    return list(chain.from_iterable(parts))


def _check_bodies(step, rows):
    for body in rows:
        if not isinstance(body, dict | list):
            raise TypeError(
                f"{step}: Writer supports only events of type dict or list, got {type(body).__name__}"
            )


__all__ = ["ParquetTarget"]
