"""Targets that write to a Table: NoSqlTarget."""

from ..engine.graph import Flow
from ..table.key_cache import Table, resolve_table

__all__ = ["NoSqlTarget"]

_METADATA = {"$key": "key", "$time": "time", "$id": "id"}


def parse_columns(step_name, columns):
    """(stored name, source, field) for each column: source is 'body' or a metadata kind
    ('key', 'time', 'id'). 'name=field' renames; '$key', '$time' and '$id' are metadata;
    (name, type) tuples name a column (the type does not matter to a table)."""
    if columns is None:
        return []
    if isinstance(columns, str):
        columns = [columns]
    if not isinstance(columns, list | tuple):
        raise TypeError(f"{step_name}: columns must be a list of column names, got {type(columns).__name__}")
    spec = []
    for column in columns:
        if isinstance(column, tuple):
            if len(column) != 2 or not isinstance(column[0], str):
                raise TypeError(f"{step_name}: a tuple in columns must be (name, type), got {column!r}")
            column = column[0]
        if not isinstance(column, str):
            raise TypeError(
                f"{step_name}: columns must hold strings or (name, type) tuples, got "
                f"{type(column).__name__}: {column!r}"
            )
        name, renamed, field = column.partition("=")
        if not renamed:
            field = name
        source = "body"
        if field.startswith("$"):
            source = _METADATA.get(field)
            if source is None:
                raise ValueError(
                    f"{step_name}: unknown metadata {field!r} in columns (known: {', '.join(_METADATA)})"
                )
            if not renamed:
                name = source
        spec.append((name, source, field))
    return spec


class NoSqlTarget(Flow):
    """Persists the data in table to its associated storage by key.

    Each event's key selects a table entry; the listed columns of its body are stored as that
    key's static attributes (added to those already held; a field that is missing or None leaves
    the stored value as it is). Events pass downstream unchanged.

    :param table: A Table object or name to persist. If a table name is provided, it will be
        looked up in the context.
    :param columns: Fields to be written to the storage. Will be extracted from events when an
        event is a dictionary (lists will be written as is). Use = notation for renaming fields
        (e.g. write_this=event_field). Use $ notation to refer to metadata ($key,
        event_time=$time). Optional. Defaults to None (will be inferred if event is dictionary).
    :param infer_columns_from_data: Whether to infer columns from the first event, when events are
        dictionaries. If True, columns will be inferred from data and used in place of explicit
        columns list if none was provided, or appended to the provided list. Optional. Defaults
        to False if columns is provided, True otherwise.
    :param name: Name of this step, as it should appear in logs. Defaults to class name (NoSqlTarget).
    :param context: Context object that holds global configurations, secrets and tables.
    """

    def __init__(
        self,
        table: Table | str,
        columns: list[str | tuple[str, str]] | None = None,
        infer_columns_from_data: bool | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._describe(table=table)
        if columns is not None:
            self._describe(columns=columns)
        if infer_columns_from_data is not None:
            self._describe(infer_columns_from_data=infer_columns_from_data)
        self._table = resolve_table(self.name, table, self.context)
        self._columns = parse_columns(self.name, columns)
        self._raw_columns = (
            [] if columns is None else [columns] if isinstance(columns, str) else list(columns)
        )
        if infer_columns_from_data is None:
            infer_columns_from_data = not columns
        self._infer = bool(infer_columns_from_data)
        self._spec = self._columns
        self._inferred = True

    def _init(self):
        self._spec = list(self._columns)
        self._inferred = not self._infer
        self._table._bind(self._runtime)

    def _state_objects(self):
        return (self._table,)

    async def _do(self, batch):
        written, error = self._write(batch)
        await self._table._written()
        if written:
            await self._emit(batch.slice(0, written))
        if error is not None:
            error.add_note(f"raised in step {self.name}")
            raise error

    async def _on_terminate(self):
        await self._table._end_flow(flush=True)

    def _close(self):
        self._table._unbind(self._runtime)

    # ---- writing
    def _infer_from(self, body):
        self._inferred = True
        if isinstance(body, list):
            raise TypeError(
                "Cannot infer_columns_from_data when event type is list. "
                "Inference is only possible from dict."
            )
        if isinstance(body, dict):
            # as the reference: the listed columns and the body's fields together, sorted by how
            # they are written ('$key' before 'a', 'w=x' by 'w=x')
            by_text = {
                _column_text(column): spec for column, spec in zip(self._raw_columns, self._spec, strict=True)
            }
            for field in body:
                by_text.setdefault(field, (field, "body", field))
            self._spec = [by_text[text] for text in sorted(by_text)]

    def _write(self, batch):
        """Writes the batch's events to the table, in order; returns how many were written and the
        error that stopped the rest (or None)."""
        keys = batch.keys
        if not self._inferred:
            columns = batch.columns
            first = (
                {name: None for name in columns.names if not _absent(columns, name, 0)}
                if columns is not None
                else batch.bodies_to_read()[0]
            )
            try:
                self._infer_from(first)
            except TypeError as ex:
                return 0, ex
        spec = self._spec
        columns = batch.columns
        if columns is not None:
            return self._write_rows(keys, self._values_from_columns(batch, columns, spec))
        bodies = batch.bodies_to_read()
        if all(type(body) is dict for body in bodies):
            values = [
                [body.get(field) for body in bodies] if source == "body" else self._metadata(batch, source)
                for _, source, field in spec
            ]
            return self._write_rows(keys, values)
        return self._write_any(batch, keys, bodies)

    @staticmethod
    def _metadata(batch, source):
        if source == "key":
            return batch.keys
        if source == "time":
            return batch.time_values
        return batch.ids

    def _values_from_columns(self, batch, columns, spec):
        values = []
        for _, source, field in spec:
            if source != "body":
                values.append(self._metadata(batch, source))
            else:
                values.append(columns.row_values(field))
        return values

    def _write_rows(self, keys, values):
        """Writes dict attributes: `values` holds one list of n values per column (None = skip)."""
        table = self._table
        names = [name for name, _, _ in self._spec]
        rows = zip(*values, strict=True) if values else ((),) * len(keys)
        i = 0
        try:
            for key, row in zip(keys, rows, strict=True):
                if key is None:
                    return i, _no_key_error()
                table._update_static(
                    key, {name: v for name, v in zip(names, row, strict=True) if v is not None}
                )
                i += 1
        except Exception as ex:
            return i, ex
        return i, None

    def _write_any(self, batch, keys, bodies):
        """Writes events whose bodies are not all dicts, one by one."""
        i = 0
        try:
            for key, body in zip(keys, bodies, strict=True):
                error = self._write_one(batch, i, key, body)
                if error is not None:
                    return i, error
                i += 1
        except Exception as ex:
            return i, ex
        return i, None

    def _write_one(self, batch, i, key, body):
        """Writes event i, whatever its body; returns the error that stops the writing, or None."""
        if key is None:
            return _no_key_error()
        spec = self._spec
        if isinstance(body, dict):
            attributes = {}
            for name, source, field in spec:
                value = body.get(field) if source == "body" else self._metadata(batch, source)[i]
                if value is not None:
                    attributes[name] = value
            self._table._update_static(key, attributes)
        elif isinstance(body, list):
            row = list(body)
            if any(source != "body" for _, source, _ in spec):
                # a list body is written as it is, with metadata inserted at its column's position,
                # up to as many items as there are columns
                for position, (_, source, _) in enumerate(spec):
                    if source != "body":
                        row.insert(position, self._metadata(batch, source)[i])
                row = row[: len(spec)]
            self._table._set_static(key, row)
        elif not spec:
            self._table._set_static(key, body)
        else:
            return TypeError(
                f"Writer supports only events of type dict or list, got {type(body).__name__}: {body!r}"
            )
        return None


def _column_text(column):
    return column[0] if isinstance(column, tuple) else column


def _absent(columns, name, i):
    mask = columns.absent.get(name)
    return mask is not None and bool(mask[i])


def _no_key_error():
    return ValueError("Event could not be written to table because it has no key")
