"""Event bodies held as columns: named NumPy arrays of equal length.

Sources that read tables (Parquet, CSV, DataFrames) and steps that add computed fields
(aggregations) keep bodies in this form; the dict bodies user functions see are built from it
once, on demand.
"""

import math

import numpy as np

__all__ = ["Columns", "float_values"]


def float_values(values):
    """The row values of a float column (Python floats), NaN as the `math.nan` object itself, as
    the reference's features hold it: rows that hold NaN then compare equal, as the reference's
    do (`math.nan == math.nan` is False, but a dict or list compares its items by identity
    first)."""
    out = values.tolist()
    nan = np.flatnonzero(np.isnan(values))
    if len(nan):
        for i in nan.tolist():
            out[i] = math.nan
    return out


class Columns:
    """Bodies of n events as named columns.

    Each column is a 1-D NumPy array. A missing field of an event (one its dict body would not
    have) is marked in `absent[name]`, a boolean array, when the column has any; the value at
    such a position is meaningless. `to_rows` turns the columns into one dict per event, with
    Python scalars, leaving out absent fields; or, when `list_rows`, into one list per event
    holding the columns' values in order (the bodies of a CSV read without `build_dict`: the
    column names are then internal, not field names, and no value is absent).
    """

    __slots__ = ("data", "absent", "n", "converters", "list_rows")

    def __init__(self, data, n=None, absent=None, converters=None, list_rows=False):
        self.data = data
        self.list_rows = list_rows
        self.absent = absent or {}
        if n is None:
            n = len(next(iter(data.values()))) if data else 0
        self.n = n
        # name -> function turning the column into a list of row values (default: ndarray.tolist)
        self.converters = converters or {}

    @property
    def names(self):
        return list(self.data)

    def __len__(self):
        return self.n

    def __contains__(self, name):
        return name in self.data

    def __getitem__(self, name):
        return self.data[name]

    def column_list(self, name):
        """The column as a list of row values (Python scalars)."""
        convert = self.converters.get(name)
        values = self.data[name]
        if convert is not None:
            return convert(values)
        if values.dtype.kind == "f":
            return float_values(values)
        return values.tolist()

    def absent_rows(self, name):
        """The mask of the events that lack field `name`, or None when none does."""
        absent = self.absent.get(name)
        if absent is None or not absent.any():
            return None
        return absent

    def row_values(self, name, missing=None):
        """The field's row values (as `column_list`), with `missing` where an event lacks the field
        (for every event when there is no such column)."""
        if name not in self.data:
            return [missing] * self.n
        values = self.column_list(name)
        absent = self.absent.get(name)
        if absent is not None:
            for i in np.flatnonzero(absent).tolist():
                values[i] = missing
        return values

    def to_rows(self):
        names = list(self.data)
        if self.list_rows:
            if not names:
                return [[] for _ in range(self.n)]
            return [list(row) for row in zip(*[self.column_list(name) for name in names], strict=True)]
        if not names:
            return [{} for _ in range(self.n)]
        values = [self.column_list(name) for name in names]
        rows = _row_builder(tuple(names))(values)
        for name, absent in self.absent.items():
            if absent is None:
                continue
            for i in np.flatnonzero(absent).tolist():
                del rows[i][name]
        return rows

    def take(self, indices):
        data = {name: col[indices] for name, col in self.data.items()}
        absent = {name: mask[indices] for name, mask in self.absent.items() if mask is not None}
        n = (
            len(indices)
            if not (isinstance(indices, np.ndarray) and indices.dtype == bool)
            else int(indices.sum())
        )
        return Columns(data, n, absent, self.converters, self.list_rows)

    def with_columns(self, extra, absent=None, converters=None):
        """A new `Columns` with `extra` columns added (replacing same-named ones)."""
        data = dict(self.data)
        data.update(extra)
        new_absent = {k: v for k, v in self.absent.items() if k not in extra}
        if absent:
            new_absent.update(absent)
        new_converters = {k: v for k, v in self.converters.items() if k not in extra}
        if converters:
            new_converters.update(converters)
        return Columns(data, self.n, new_absent, new_converters)

    def select(self, names):
        return Columns(
            {name: self.data[name] for name in names},
            self.n,
            {k: v for k, v in self.absent.items() if k in names},
            {k: v for k, v in self.converters.items() if k in names},
        )

    @staticmethod
    def concat(parts):
        """Columns of several batches one after the other; None if their columns differ."""
        first = parts[0]
        names = first.names
        if any(p.names != names or p.list_rows != first.list_rows for p in parts[1:]):
            return None
        data = {name: np.concatenate([p.data[name] for p in parts]) for name in names}
        absent = {}
        for name in names:
            if any(name in p.absent for p in parts):
                absent[name] = np.concatenate([p.absent.get(name, np.zeros(p.n, dtype=bool)) for p in parts])
        return Columns(data, sum(p.n for p in parts), absent, first.converters, first.list_rows)


_ROW_BUILDERS = {}


def _row_builder(names):
    """A function turning the columns' value lists into one dict per row. For str names it is a
    comprehension with a dict display, about twice as fast as dict(zip(names, row))."""
    builder = _ROW_BUILDERS.get(names)
    if builder is None:
        if all(type(name) is str for name in names) and len(names) <= 250:
            params = [f"c{i}" for i in range(len(names))]
            entries = ", ".join(f"{name!r}: {p}" for name, p in zip(names, params, strict=True))
            targets = ", ".join(params) + ("," if len(params) == 1 else "")
            builder = eval(f"lambda values: [{{{entries}}} for {targets} in zip(*values, strict=True)]")
        else:

            def builder(values):
                return [dict(zip(names, row)) for row in zip(*values, strict=True)]

        if len(_ROW_BUILDERS) > 1000:
            _ROW_BUILDERS.clear()
        _ROW_BUILDERS[names] = builder
    return builder
