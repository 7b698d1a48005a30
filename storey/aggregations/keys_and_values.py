"""What the aggregation steps take from a batch: each event's key, and each aggregator's value
as float64 plus a mask of the events that have one.

Columns stay columns: a numeric body column is aggregated as is. Rows are only built when a user
function (a key, field or filter callable) must see the bodies.
"""

import numbers

import numpy as np

from ..core.lazy import loaded

__all__ = ["KeySource", "fill_values", "one_value"]


class KeySource:
    """How a step finds each event's key: the event's own key (None), a body field (str), a list of
    body fields (a list key), or a function of the body."""

    def __init__(self, step_name, key, allow_list=True):
        if key is not None and not (isinstance(key, str) or callable(key) or isinstance(key, list)):
            raise TypeError(
                f"{step_name}: key must be a field name, a list of field names or a function of the body, "
                f"got {type(key).__name__}: {key!r}"
            )
        if isinstance(key, list) and (not allow_list or not all(isinstance(k, str) for k in key)):
            raise TypeError(f"{step_name}: key must be a field name or a list of field names, got {key!r}")
        self.key = key

    @property
    def replaces_keys(self):
        return self.key is not None

    def keys(self, batch):
        """The key of each event (a sequence), as the events' new keys when the key comes from the
        body."""
        key = self.key
        if key is None:
            # as the batch has them: a source may hand them lazily (see AggregationState.slots_of)
            return batch.keys
        if isinstance(key, str):
            columns = batch.columns
            if columns is not None and not columns.list_rows:
                return _column_keys(batch, columns, key)
            return [
                _field(body, key, event_key) for body, event_key in zip(batch.bodies_to_read(), batch.keys)
            ]
        if isinstance(key, list):
            out = []
            for body, event_key in zip(batch.bodies_to_read(), batch.keys):
                out.append([body.get(name) for name in key] if isinstance(body, dict) and body else event_key)
            return out
        return [key(body) for body in batch.bodies_to_read()]


def _field(body, name, event_key):
    # an empty (falsy) body keeps the event's key, as in the reference
    if isinstance(body, dict) and body:
        return body.get(name)
    return event_key


def _column_keys(batch, columns, name):
    if name not in columns:
        return [None] * batch.n
    values = columns.column_list(name)
    absent = columns.absent_rows(name)
    if absent is not None:
        for i in np.flatnonzero(absent).tolist():
            values[i] = None
    return values


def _as_float(step_name, aggregator, value):
    """A value to aggregate as a float, or None when it is missing."""
    if value is None:
        return None
    kind = type(value)
    if kind is float or kind is int or kind is bool:
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    pandas = loaded("pandas")
    if pandas is not None and value is pandas.NA:
        return None
    what = _what(aggregator)
    raise TypeError(
        f"{step_name}: cannot aggregate {what}: {value!r} ({type(value).__name__}) is not a number"
    )


# value types a list of values is copied as is for (float() of each is what numpy makes of them)
_PLAIN = frozenset((float, int, bool))


def _fill_from_list(step_name, aggregator, raw, values, valid):
    if _PLAIN.issuperset(map(type, raw)):
        values[:] = raw
        valid.fill(1)
        return
    if _counts_only(aggregator):
        # counted whatever they are: the values themselves are never read
        values[:] = 0.0
        missing = _pandas_na()
        valid[:] = [value is not None and value is not missing for value in raw]
        return
    for i, value in enumerate(raw):
        x = _as_float(step_name, aggregator, value)
        if x is not None:
            values[i] = x
            valid[i] = 1


def _fill_from_column(step_name, aggregator, columns, name, values, valid):
    col = columns[name]
    absent = columns.absent_rows(name)
    converter = columns.converters.get(name)
    if col.dtype.kind in "fiub":
        values[:] = col
        ok = np.ones(len(col), dtype=bool) if absent is None else ~absent
        if converter is not None:
            ok &= ~converter.no_value_mask(col)
        valid[:] = ok
        return
    if col.dtype.kind != "O" and not _counts_only(aggregator):
        what = _what(aggregator)
        raise TypeError(
            f"{step_name}: cannot aggregate {what}: its values are {col.dtype} values, not numbers"
        )
    raw = columns.column_list(name)
    if absent is not None:
        for i in np.flatnonzero(absent).tolist():
            raw[i] = None
    _fill_from_list(step_name, aggregator, raw, values, valid)


def _counts_only(aggregator):
    """Whether the aggregator only counts its values: then a value of any type counts (text too,
    as in storey's own README example), where other aggregations need numbers."""
    return all(name == "count" for name in aggregator.aggregations)


def fill_values(step_name, aggregators, batch, values, valid):
    """Fills row a of `values`/`valid` with aggregator a's value for every event; `valid` comes
    zeroed, and valid[a, i] stays 0 where event i has none, or its aggr_filter rejects it."""
    # None too for list bodies (a CSV read without build_dict): no fields to aggregate
    columns = batch.columns
    bodies = None
    for a, aggregator in enumerate(aggregators):
        field = aggregator.field
        row_values = values[a]
        row_valid = valid[a]
        if isinstance(field, str) and columns is not None:
            if field in columns:
                _fill_from_column(step_name, aggregator, columns, field, row_values, row_valid)
        else:
            if bodies is None:
                bodies = batch.bodies_to_read()
            if isinstance(field, str):
                raw = [
                    body.get(field) if isinstance(body, dict) else _not_a_dict(step_name, body)
                    for body in bodies
                ]
            else:
                raw = [field(body) for body in bodies]
            _fill_from_list(step_name, aggregator, raw, row_values, row_valid)
        if aggregator.aggr_filter is not None:
            if bodies is None:
                bodies = batch.bodies_to_read()
            keep = aggregator.aggr_filter
            for i, body in enumerate(bodies):
                if row_valid[i] and not keep(body):
                    row_valid[i] = 0


def one_value(step_name, aggregator, body):
    """The aggregator's value for one event (its row body), as fill_values takes it: a number (any
    value when the aggregator only counts), or None when the event has none or its aggr_filter
    rejects it."""
    field = aggregator.field
    if isinstance(field, str):
        value = body.get(field) if isinstance(body, dict) else _not_a_dict(step_name, body)
    else:
        value = field(body)
    kind = type(value)
    if kind is not float and kind is not int and kind is not bool:
        if _counts_only(aggregator):
            # counted whatever it is, unless it is none
            if value is None or value is _pandas_na():
                return None
            value = 0.0
        else:
            value = _as_float(step_name, aggregator, value)
        if value is None:
            return None
    keep = aggregator.aggr_filter
    return value if keep is None or keep(body) else None


def _pandas_na():
    """pandas.NA (a missing value) when pandas is loaded, else None."""
    pandas = loaded("pandas")
    return None if pandas is None else pandas.NA


def _what(aggregator):
    """How an error names what could not be aggregated."""
    field = aggregator.field
    name = aggregator.name
    return f"field {field!r} of {name!r}" if isinstance(field, str) else f"{name!r}"


def _not_a_dict(step_name, body):
    raise TypeError(
        f"{step_name}: event bodies must be dicts to aggregate their fields, got {type(body).__name__}"
    )
