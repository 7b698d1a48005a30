"""CSVTarget: events written as lines of one CSV file."""

import pyarrow as pa

from ...core.checks import check_storage_options
from ...core.storage import AtomicFile, get_filesystem, remove_stale_temporaries, split
from ..buffering import BufferedFileTarget
from .column_spec import check_positive, merge_inferred, parse_columns
from .csv_cells import column_texts, time_texts, value_texts
from .csv_lines import Lines, line_text, lines_of_cells, text_of_rows
from .partitions import factorize_values, key_texts
from .values import body_rows, field_values, first_body_fields, key_values


class CSVTarget(BufferedFileTarget):
    """Writes events to a CSV file.

    :param path: path where CSV file will be written (a local path or an fsspec URL). The file
        appears under this name, complete, when the flow terminates without an error; a flow that
        fails leaves none.
    :param columns: Fields to be written to CSV. Will be written as the file header if header is
        True. Will be extracted from events when an event is a dictionary (lists will be written as
        is). Use = notation for renaming fields (e.g. write_this=event_field). Use $ notation to
        refer to metadata ($key, event_time=$time). Optional. Defaults to None (will be inferred if
        event is dictionary).
    :param header: Whether to write the columns as a CSV header.
    :param infer_columns_from_data: Whether to infer columns from the first event, when events are
        dictionaries. If True, columns will be inferred from data and used in place of explicit
        columns list if none was provided, or appended to the provided list. If header is True and
        columns is not provided, infer_columns_from_data=True is implied. Optional. Default to False
        if columns is provided, True otherwise.
    :param max_lines_before_flush: Number of lines to write before flushing data to the output
        file. Defaults to 128. `max_events` is accepted as another name for it.
    :param max_seconds_before_flush: Maximum delay in seconds before flushing lines. Defaults to 3.
        `timeout_secs` is accepted as another name for it.
    :param key: batch lines by key ('$key' or a body field name): a key's lines are written
        together once it holds max_lines_before_flush of them.
    :param storage_options: Extra options for an fsspec URL (e.g. "s3://..."). Optional.
    :param name: Name of this step, as it should appear in logs. Defaults to class name (CSVTarget).
    """

    def __init__(
        self,
        path,
        columns=None,
        header=False,
        infer_columns_from_data=None,
        max_lines_before_flush=128,
        max_seconds_before_flush=3,
        **kwargs,
    ):
        storage_options = kwargs.pop("storage_options", None)
        max_events = kwargs.pop("max_events", None)
        timeout_secs = kwargs.pop("timeout_secs", None)
        key = kwargs.pop("key", None)
        kwargs.setdefault("name", "CSVTarget")
        step = kwargs["name"]
        if max_events is not None:
            max_lines_before_flush = max_events
        if timeout_secs is not None:
            max_seconds_before_flush = timeout_secs
        if not isinstance(path, str) or not path:
            raise TypeError(f"{step}: path must be a non-empty string, got {path!r}")
        check_storage_options(step, storage_options)
        if not isinstance(max_lines_before_flush, int) or isinstance(max_lines_before_flush, bool):
            raise ValueError(
                f"{step}: max_lines_before_flush must be a positive int, got {max_lines_before_flush!r}"
            )
        check_positive(step, "max_lines_before_flush", max_lines_before_flush, allow_none=False)
        check_positive(step, "max_seconds_before_flush", max_seconds_before_flush)
        if (
            key is not None
            and key != "$key"
            and not (isinstance(key, str) and key and not key.startswith("$"))
        ):
            raise ValueError(f"{step}: key must be '$key' or a body field name, got {key!r}")
        self._columns_param = parse_columns(step, "columns", columns)
        if infer_columns_from_data is None:
            infer_columns_from_data = not self._columns_param
        super().__init__(
            max_events=max_lines_before_flush, flush_after_seconds=max_seconds_before_flush, **kwargs
        )
        # as storey's CSVTarget describes itself
        self._kwargs = {
            "timeout_secs": max_seconds_before_flush,
            **self._kwargs,
            "max_events": max_lines_before_flush,
        }
        self._path = path
        self._header = bool(header)
        self._infer = bool(infer_columns_from_data)
        self._key = key
        # lines of one stream: where a write ends does not change the file
        self._split_writes = key is not None
        self._fs, self._fs_path = get_filesystem(path, storage_options)
        self._specs = None
        self._resolved = False
        self._file = None

    def _init(self):
        super()._init()
        self._specs = None
        self._resolved = False
        self._file = None

    # ---- columns
    def _resolve_columns(self, batch):
        self._resolved = True
        first = _first_body(batch)
        if not isinstance(first, dict | list):
            if self._columns_param is None:
                raise TypeError(f"{self.name}: CSV writer does not support event body of type {type(first)}.")
            raise TypeError(f"{self.name}: Writer supports only events of type dict or list.")
        if self._infer:
            self._specs = merge_inferred(self._columns_param, first_body_fields(self.name, batch))
        else:
            self._specs = self._columns_param
        if self._header and self._specs is None:
            raise ValueError(
                f"{self.name}: columns must be defined when header is True and events type is not dictionary"
            )
        if self._header and not self._specs:
            raise ValueError(
                f"{self.name}: header is True but there are no columns: none given, and the first "
                f"event's body has no fields to infer them from ({first!r})"
            )

    def _prepare(self, batch):
        if not self._resolved:
            self._resolve_columns(batch)
        texts = self._column_texts(batch)
        if texts is not None:
            return lines_of_cells(texts, batch.n, self._split_writes)
        rows = batch.bodies_to_read()
        values = self._row_values(batch, rows)
        if values and len(set(map(len, values))) == 1:
            # one cell per column on every line: format column by column
            columns = list(zip(*values))
            return lines_of_cells([value_texts(list(c)) for c in columns], len(values), self._split_writes)
        if self._split_writes:
            return Lines([line_text(v) for v in values])
        return Lines(text_of_rows(values), len(values))

    def _column_texts(self, batch):
        """The cell texts of each column of the lines, from column bodies; None when the bodies
        are rows (or list rows too short for the columns: the row path fails as the reference)."""
        cols = batch.stored_columns()
        if cols is None:
            return None
        specs = self._specs
        if not cols.list_rows:
            return [self._spec_texts(batch, spec) for spec in specs or []]
        # a list body is written as it is, or fills the columns that are not metadata in order
        names = cols.names
        if specs is None or all(spec.meta is None for spec in specs):
            return [column_texts(cols, name) for name in names]
        if sum(spec.meta is None for spec in specs) > len(names):
            return None
        fields = iter(names)
        return [
            column_texts(cols, next(fields)) if spec.meta is None else self._spec_texts(batch, spec)
            for spec in specs
        ]

    def _spec_texts(self, batch, spec):
        if spec.meta == "key":
            keys = key_values(batch)
            if isinstance(keys, pa.Array):
                return keys.cast(pa.string())
            if all(type(k) is str for k in keys):
                return pa.array(keys, pa.string())
            return pa.array(["" if k is None else str(k) for k in keys], pa.string())
        if spec.meta == "time":
            return time_texts(batch)
        if spec.meta == "id":
            return pa.array(batch.ids, pa.string())
        return column_texts(batch.columns, spec.field)

    def _row_values(self, batch, rows):
        """The cell values of each event's line."""
        specs = self._specs
        if specs is None:
            return [self._as_is(body) for body in rows]
        meta = self._meta_values(batch)
        kinds = {type(b) for b in rows}
        if kinds == {dict} and specs:
            columns = [meta[s.meta] if s.meta is not None else [b.get(s.field) for b in rows] for s in specs]
            return list(zip(*columns))
        if kinds == {list}:
            if not meta:
                return rows
            # list elements fill the columns that are not metadata, in order
            columns = []
            pos = 0
            for s in specs:
                if s.meta is not None:
                    columns.append(meta[s.meta])
                else:
                    columns.append([b[pos] for b in rows])
                    pos += 1
            return list(zip(*columns))
        return [self._one_row(body, i, meta) for i, body in enumerate(rows)]

    def _meta_values(self, batch):
        """The metadata columns the specs use, as lists (times already as text)."""
        used = {s.meta for s in self._specs if s.meta is not None}
        meta = {}
        if "key" in used:
            meta["key"] = batch.keys
        if "time" in used:
            meta["time"] = time_texts(batch).to_pylist()
        if "id" in used:
            meta["id"] = batch.ids
        return meta

    def _one_row(self, body, i, meta):
        specs = self._specs
        if isinstance(body, dict):
            return [body.get(s.field) if s.meta is None else meta[s.meta][i] for s in specs]
        if isinstance(body, list):
            if not meta:
                return body
            values = []
            pos = 0
            for s in specs:
                if s.meta is None:
                    values.append(body[pos])
                    pos += 1
                else:
                    values.append(meta[s.meta][i])
            return values
        raise TypeError(f"{self.name}: Writer supports only events of type dict or list.")

    def _as_is(self, body):
        if isinstance(body, list):
            return body
        if isinstance(body, dict):
            return []
        raise TypeError(f"{self.name}: CSV writer does not support event body of type {type(body)}.")

    def _groups(self, batch):
        if self._key is None:
            return None
        if self._key == "$key":
            values = batch.keys
        else:
            rows = body_rows(batch)
            if rows is None:
                values = batch.field(self._key)
            else:
                values = field_values(rows, self._key)
        codes, distinct = factorize_values(values)
        return [("key", t) for t in key_texts(distinct)], codes

    # ---- writing
    def _write(self, group, chunks):
        if self._file is None:
            folder, name = split(self._fs, self._fs_path)
            remove_stale_temporaries(self._fs, folder, name)
            self._file = AtomicFile(self._fs, self._fs_path)
            out = self._file.open_binary() if isinstance(self._file.target, str) else self._file.target
            if self._header:
                out.write(line_text([s.name for s in self._specs]).encode("utf-8"))
        out = self._file.open_binary() if isinstance(self._file.target, str) else self._file.target
        for chunk in chunks:
            out.write(chunk.payload())
        out.flush()

    def _finish(self):
        if self._file is not None:
            file, self._file = self._file, None
            file.commit()

    def _abandon(self):
        self._drop_buffers()
        if self._file is not None:
            file, self._file = self._file, None
            file.discard()


def _first_body(batch):
    """The first event's body, or an empty dict/list standing for it when the bodies are columns."""
    cols = batch.stored_columns()
    if cols is not None:
        return [] if cols.list_rows else {}
    return batch.bodies_to_read()[0]


__all__ = ["CSVTarget"]
