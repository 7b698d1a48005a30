"""The features the aggregation steps add to a batch: as dicts merged into row bodies, or as
columns added to column bodies (a columnar batch stays columnar).

As in the reference, a body field of the same name as a feature wins over the feature, and a NaN
feature is the `math.nan` object itself (see `storey.core.columns.float_values`).
"""

import math
from collections.abc import Mapping

import numpy as np

from ..core.columns import Columns
from ..kernels.layout import ABSENT, INT

__all__ = ["Features"]


class Features:
    """Named feature values of n events, in blocks as the kernels write them: per block, the
    output rows `out[rows]` (float64 [feature, event]) and their flags (ABSENT: the event has no
    such feature; INT: the value is an int `max_value`)."""

    __slots__ = ("n", "blocks", "names", "_merge_one")

    def __init__(self, n):
        self.n = n
        # the function merging one event's features into its body, once looked up
        self._merge_one = None
        # (names, out, flags, rows)
        self.blocks = []
        # every block's names, in order
        self.names = ()

    def add_block(self, names, out, flags, rows):
        """Adds the features out[rows] named `names` (rows None: all of out's rows, in order)."""
        if names:
            self.blocks.append((names, out, flags, rows))
            self.names += tuple(names)
            self._merge_one = None

    def columns(self):
        """(name, values, flags) of each feature."""
        for names, out, flags, rows in self.blocks:
            for name, row in zip(names, range(out.shape[0]) if rows is None else rows):
                yield name, out[row], flags[row]

    def dicts(self):
        """One dict of features per event."""
        n = self.n
        rows = [{} for _ in range(n)]
        for names, out, flags, block_rows in self.blocks:
            if block_rows is None:
                values, marks = out, flags
            else:
                values, marks = out[block_rows], flags[block_rows]
            if n == 1:
                per_event = [values[:, 0].tolist()]
            else:
                per_event = values.T.tolist()
            _nan_objects(per_event, values)
            for row, event_values in zip(rows, per_event):
                row.update(zip(names, event_values))
            if np.count_nonzero(marks):
                for f, i in zip(*np.nonzero(marks)):
                    name = names[f]
                    if marks[f, i] & ABSENT:
                        del rows[i][name]
                    elif marks[f, i] & INT:
                        rows[i][name] = int(rows[i][name])
        return rows

    def merged_into(self, bodies):
        """New bodies: each event's features, then its body's fields (which win)."""
        if self.n == 1:
            merged = self._merged_into_one(bodies[0])
            if merged is not None:
                return [merged]
        blocks = self.blocks
        if not any(np.count_nonzero(flags) for _, _, flags, _ in blocks):
            merge = _mergers(self.names)[0]
            if merge is not None:
                values = [out if rows is None else out[rows] for _, out, _, rows in blocks]
                values = values[0] if len(values) == 1 else np.vstack(values)
                per_event = values.T.tolist()
                _nan_objects(per_event, values)
                return merge(per_event, bodies)
        rows = self.dicts()
        for row, body in zip(rows, bodies):
            row.update(body)
        return rows

    def _merged_into_one(self, body):
        """merged_into for one event (a live emit), in fewer steps; None when a feature is
        flagged, or its names cannot be merged that way."""
        values = []
        for _, out, flags, rows in self.blocks:
            if any(flags.tobytes()):
                return None
            column = out[:, 0].tolist()
            values.extend(column if rows is None else [column[row] for row in rows])
        merge = self._merge_one
        if merge is None:
            merge = self._merge_one = _mergers(self.names)[1]
            if merge is None:
                return None
        per_event = [values]
        _nan_objects(per_event, None)
        return merge(per_event[0], body)

    def add_to_columns(self, columns):
        """`columns` with the features added as columns (body columns of the same name win where
        the body has a value)."""
        extra = {}
        absent = {}
        for name, values, flags in self.columns():
            missing = None
            if flags.any():
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
        data = columns.data
        if getattr(data, "arrow_column", None) is None or any(name in data for name in extra):
            return columns.with_columns(extra, absent)
        # columns a file source read stay unconverted Arrow arrays (a target writes them as read)
        kept_absent = {**columns.absent, **absent}
        return Columns(_ArrowWithFeatures(data, extra), columns.n, kept_absent, dict(columns.converters))


def _nan_objects(per_event, values):
    """Makes every NaN of `per_event` (one list of floats per event, from `values`, features by
    events) the `math.nan` object, in place (see `core.columns.float_values`)."""
    if len(per_event) == 1:
        # one event (a live emit): summing its few values finds a NaN sooner than NumPy would
        total = sum(per_event[0])
        if total != total:
            per_event[0] = [math.nan if v != v else v for v in per_event[0]]
        return
    features, events = np.nonzero(np.isnan(values))
    for f, i in zip(features.tolist(), events.tolist()):
        per_event[i][f] = math.nan


_MERGERS = {}


def _mergers(names):
    """Functions that make each event's new body: a dict display of the features named `names`
    followed by the body, `{'a_sum_1h': v0, ..., **body}`, about twice as fast as filling dicts and
    updating them. (for a batch: `(values, bodies) -> dicts`, values[i][f]; for one event:
    `(values, body) -> dict`), or (None, None) when the names cannot be written that way."""
    found = _MERGERS.get(names)
    if found is None:
        found = (None, None)
        if names and len(names) <= 250 and all(type(name) is str for name in names):
            params = [f"v{i}" for i in range(len(names))]
            entries = "".join(f"{name!r}: {p}, " for name, p in zip(names, params, strict=True))
            targets = ", ".join(params)
            one_entries = "".join(f"{name!r}: values[{i}], " for i, name in enumerate(names))
            found = (
                eval(f"lambda values, bodies: [{{{entries}**b}} for ({targets},), b in zip(values, bodies)]"),
                eval(f"lambda values, body: {{{one_entries}**body}}"),
            )
        if len(_MERGERS) > 1000:
            _MERGERS.clear()
        _MERGERS[names] = found
    return found


class _ArrowWithFeatures(Mapping):
    """The columns of a file source (converted to NumPy on first use, their Arrow arrays at hand
    for targets through `arrow_column`) with feature columns added."""

    __slots__ = ("base", "extra", "overridden")

    def __init__(self, base, extra):
        self.base = base
        self.extra = extra
        self.overridden = frozenset(extra) | getattr(base, "overridden", frozenset())

    def __getitem__(self, name):
        values = self.extra.get(name)
        return self.base[name] if values is None else values

    def __iter__(self):
        yield from self.base
        yield from self.extra

    def __len__(self):
        return len(self.base) + len(self.extra)

    def __contains__(self, name):
        return name in self.extra or name in self.base

    def arrow_column(self, name):
        return self.base.arrow_column(name)

    def none_mask(self, name):
        if name in self.extra:
            return None
        none_mask = getattr(self.base, "none_mask", None)
        return None if none_mask is None else none_mask(name)


def _body_wins(columns, name, values, missing):
    """A feature column merged under an existing body column: the body's value where it has one."""
    body = columns[name]
    body_absent = columns.absent_rows(name)
    if body_absent is None:
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
