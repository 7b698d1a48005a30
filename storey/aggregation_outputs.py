"""The features the aggregation steps add to a batch: as dicts merged into row bodies, or as
columns added to column bodies (a columnar batch stays columnar).

As in the reference, a body field of the same name as a feature wins over the feature.
"""

import numpy as np

from .kernels.layout import ABSENT, INT

__all__ = ["Features"]


class Features:
    """Named feature values of n events: per feature a float64 row and a row of flags (ABSENT:
    the event has no such feature; INT: the value is an int `max_value`)."""

    __slots__ = ("n", "names", "values", "flags", "_flagged")

    def __init__(self, n):
        self.n = n
        self.names = []
        self.values = []
        self.flags = []
        self._flagged = None

    def add(self, name, values, flags):
        self.names.append(name)
        self.values.append(values)
        self.flags.append(flags)

    def _any_flags(self):
        if self._flagged is None:
            self._flagged = any(f.any() for f in self.flags)
        return self._flagged

    def dicts(self):
        """One dict of features per event."""
        names = self.names
        if not names:
            return [{} for _ in range(self.n)]
        columns = [v.tolist() for v in self.values]
        rows = [dict(zip(names, values)) for values in zip(*columns)]
        if self._any_flags():
            for name, flags, column in zip(names, self.flags, columns):
                if not flags.any():
                    continue
                for i in np.flatnonzero(flags).tolist():
                    if flags[i] & ABSENT:
                        del rows[i][name]
                    elif flags[i] & INT:
                        rows[i][name] = int(column[i])
        return rows

    def merged_into(self, bodies):
        """New bodies: each event's features, then its body's fields (which win)."""
        rows = self.dicts()
        for row, body in zip(rows, bodies):
            row.update(body)
        return rows

    def add_to_columns(self, columns):
        """`columns` with the features added as columns (body columns of the same name win where
        the body has a value)."""
        extra = {}
        absent = {}
        for name, values, flags in zip(self.names, self.values, self.flags):
            missing = None
            if self._any_flags() and flags.any():
                missing = (flags & ABSENT) != 0
                as_int = (flags & INT) != 0
                if as_int.any():
                    values = values.astype(object)
                    for i in np.flatnonzero(as_int).tolist():
                        values[i] = int(values[i])
                if not missing.any():
                    missing = None
            if name in columns:
                values, missing = _body_wins(columns, name, values, missing)
            extra[name] = values
            if missing is not None:
                absent[name] = missing
        return columns.with_columns(extra, absent)


def _body_wins(columns, name, values, missing):
    """A feature column merged under an existing body column: the body's value where it has one."""
    body = columns[name]
    body_absent = columns.absent.get(name)
    if body_absent is None or not body_absent.any():
        return body, None
    merged = body.astype(object) if body.dtype != values.dtype else body.copy()
    take = body_absent
    merged[take] = values[take]
    still = None
    if missing is not None:
        still = take & missing
        if not still.any():
            still = None
    return merged, still
