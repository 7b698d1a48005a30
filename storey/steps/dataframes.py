"""Steps that build pandas DataFrames: ToDataFrame (one per event, from a list body) and
ReduceToDataFrame (one from all events, as the flow's termination result).

Column types are those pandas itself gives the values on the installed pandas (`str` columns
for text on pandas 3), as `pandas.DataFrame(bodies, columns=columns)` builds them.
"""

import math

import numpy as np
import pandas as pd

from ..engine.graph import Flow

__all__ = ["ReduceToDataFrame", "ToDataFrame"]


def column_series(values):
    """A DataFrame column of `values` (a list), typed as pandas infers it."""
    return pd.Series(values) if len(values) else pd.Series(values, dtype=object)


def _check_columns(step, columns):
    if columns is not None and (isinstance(columns, str) or not hasattr(columns, "__iter__")):
        raise TypeError(
            f"{step}: columns must be a list of column names, got {type(columns).__name__}: {columns!r}"
        )
    return list(columns) if columns is not None else None


def _check_name(step, param, value, allow_list=False):
    if value is None or isinstance(value, str):
        return value
    if allow_list and isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    expected = (
        "a column name (a string) or a non-empty list of them" if allow_list else "a column name (a string)"
    )
    raise TypeError(f"{step}: {param} must be {expected}, got {type(value).__name__}: {value!r}")


class ToDataFrame(Flow):
    """Create pandas data frame from events. Can appear in the middle of the flow, as opposed to
    ReduceToDataFrame.

    Each event's body (typically a list of dicts or lists, as `Batch` emits) is replaced by a
    DataFrame built from it; key, time and id are kept.

    :param index: name of the column (or list of names, for a multi-index) to be used as index.
        Optional. If not set, DataFrame will be range indexed.
    :param columns: list of column names to be passed as-is to the DataFrame constructor. Optional.
    """

    def __init__(self, index: str | list[str] | None = None, columns: list[str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self._index = _check_name(self.name, "index", index, allow_list=True)
        self._columns = _check_columns(self.name, columns)

    async def _do(self, batch):
        frames = []
        error = None
        try:
            for body in batch.bodies_to_read():
                frame = pd.DataFrame(body, columns=self._columns)
                if self._index is not None:
                    frame = frame.set_index(self._index)
                frames.append(frame)
        except Exception as ex:
            error = ex
        if frames:
            await self._emit(batch.with_first_bodies(frames))
        if error is not None:
            error.add_note(f"raised in step {self.name}")
            raise error


class ReduceToDataFrame(Flow):
    """Builds a pandas DataFrame from all the events of the flow, which is the flow's termination
    result. It is a terminal step: nothing can follow it.

    Bodies must be all dicts (a column per field) or all lists (a column per position).

    :param index: name of the column (or list of names, for a multi-index) to be used as index.
        Optional. If not set, DataFrame will be range indexed.
    :param columns: list of column names to be passed as-is to the DataFrame constructor. Optional.
    :param insert_key_column_as: name of a column to hold the event key, or a list of names for
        list keys: one column per item. Optional.
    :param insert_time_column_as: name of a column to hold the event time. Optional.
    :param insert_id_column_as: name of a column to hold the event id. Optional.
    """

    def __init__(
        self,
        index: str | list[str] | None = None,
        columns: list[str] | None = None,
        insert_key_column_as: str | list[str] | None = None,
        insert_time_column_as: str | None = None,
        insert_id_column_as: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._index = _check_name(self.name, "index", index, allow_list=True)
        insert_key_column_as = _check_name(
            self.name, "insert_key_column_as", insert_key_column_as, allow_list=True
        )
        _check_name(self.name, "insert_time_column_as", insert_time_column_as)
        _check_name(self.name, "insert_id_column_as", insert_id_column_as)
        self._columns = _check_columns(self.name, columns)
        self._meta_columns = [
            (name, attribute)
            for name, attribute in (
                (insert_key_column_as, "keys"),
                (insert_time_column_as, "time_values"),
                (insert_id_column_as, "ids"),
            )
            if name is not None
        ]
        self._init()

    def to(self, outlet):
        raise ValueError(f"{self.name} is a terminal step. It cannot be piped further.")

    def _init(self):
        # what the events held: ('columns', Columns) or ('rows', [bodies]), in arrival order
        self._parts = []
        self._n = 0
        self._mode = None  # dict or list, set by the first body
        self._meta = {attribute: [] for _, attribute in self._meta_columns}

    async def _do(self, batch):
        columns = batch.columns
        error = None
        if columns is not None and self._mode in (None, dict):
            self._mode = dict
            self._parts.append(("columns", columns))
            kept = batch.n
        else:
            bodies = batch.bodies_to_read()
            kept, error = self._check_bodies(bodies)
            if kept:
                self._parts.append(("rows", bodies[:kept] if kept < batch.n else bodies))
        self._n += kept
        for _, attribute in self._meta_columns:
            values = getattr(batch, attribute)
            self._meta[attribute].extend(values[:kept] if kept < batch.n else values)
        if error is not None:
            raise error

    def _check_bodies(self, bodies):
        """How many bodies, from the first, have the type of the first body, and the error for the
        first that does not."""
        for i, body in enumerate(bodies):
            kind = dict if isinstance(body, dict) else list if isinstance(body, list) else None
            if kind is None:
                return i, ValueError(
                    f"{self.name} only supports bodies of type dict or list, not {type(body)}: {body!r}"
                )
            if self._mode is None:
                self._mode = kind
            elif kind is not self._mode:
                return i, ValueError(
                    f"{self.name}: bodies must be all dicts or all lists; got a {kind.__name__} body "
                    f"after {self._mode.__name__} bodies: {body!r}"
                )
        return len(bodies), None

    async def _on_terminate(self):
        frame = self._frame()
        self._init()
        return frame

    def _frame(self):
        if self._mode is list:
            frame = pd.DataFrame([row for _, rows in self._parts for row in rows], columns=self._columns)
        else:
            frame = self._frame_from_parts()
        if frame.empty:
            return frame
        for name, attribute in self._meta_columns:
            if isinstance(name, list):
                self._insert_list_keys(frame, name, self._meta[attribute])
            else:
                frame[name] = column_series(self._meta[attribute])
        if self._index is not None:
            frame = frame.set_index(self._index)
        return frame

    def _insert_list_keys(self, frame, names, keys):
        """List keys, one column per item (as pandas makes columns of them)."""
        items = pd.DataFrame(keys)
        if items.shape[1] != len(names):
            raise ValueError(
                f"{self.name}: insert_key_column_as={names!r} names {len(names)} columns, "
                f"but the keys have {items.shape[1]} items (first key: {keys[0]!r})"
            )
        for j, name in enumerate(names):
            frame[name] = items.iloc[:, j]

    def _frame_from_parts(self):
        parts = self._parts
        if all(kind == "columns" for kind, _ in parts) and len({tuple(c.names) for _, c in parts}) == 1:
            names = parts[0][1].names
            wanted = self._columns if self._columns is not None else names
            if not wanted:
                return pd.DataFrame(index=pd.RangeIndex(self._n), columns=[])
            data = {}
            for name in wanted:
                if name in names:
                    data[name] = _concat_column([c for _, c in parts], name)
                else:
                    data[name] = column_series([math.nan] * self._n)
            return pd.DataFrame(data)
        bodies = []
        for kind, part in parts:
            bodies.extend(part.to_rows() if kind == "columns" else part)
        return pd.DataFrame(bodies, columns=self._columns)


def _concat_column(parts, name):
    """One body field of every event, as the column dict bodies would have given."""
    arrays = [c[name] for c in parts]
    plain = all(name not in c.converters and c.absent_rows(name) is None for c in parts)
    if plain:
        kind = arrays[0].dtype.kind
        if all(a.dtype.kind == kind for a in arrays):
            if kind in "iu":
                return pd.Series(np.concatenate(arrays).astype(np.int64))
            if kind == "f":
                return pd.Series(np.concatenate(arrays).astype(np.float64))
            if kind == "b":
                return pd.Series(np.concatenate(arrays))
    values = []
    for c in parts:
        values.extend(c.row_values(name, missing=math.nan))
    return column_series(values)
