"""Reading what a target writes out of an `EventBatch`: body fields, keys, times and ids.

Column bodies (from file sources and aggregations) are read as arrays, without building rows;
row bodies (from emit and user functions) are read once per field. Values follow the rows the
reference would see: a missing field is None, a float column's NaN stays NaN.
"""

from datetime import datetime

import numpy as np
import pyarrow as pa


def body_rows(batch):
    """The row bodies when the batch holds rows only, else None (the columns are valid)."""
    return None if batch.columns is not None else batch.bodies_to_read()


def first_body_fields(step, batch):
    """The field names of the batch's first body, sorted (columns inferred from data)."""
    cols = batch.columns
    if cols is not None:
        return sorted(name for name in cols.names if not _absent_at(cols, name, 0))
    body = batch.bodies_to_read()[0]
    if isinstance(body, dict):
        return sorted(body)
    if isinstance(body, list):
        raise TypeError(
            f"{step}: Cannot infer_columns_from_data when event type is list. "
            "Inference is only possible from dict."
        )
    raise TypeError(f"{step}: cannot infer columns from an event body of type {type(body).__name__}")


def _absent_at(cols, name, i):
    absent = cols.absent.get(name)
    return absent is not None and bool(absent[i])


def time_info(batch):
    """(tz, pandas) of the batch's event times: tz is None for naive times; pandas is True when
    the times are `pandas.Timestamp`s. Read without building the time objects."""
    values = batch._time_values
    if values is not None:
        first = values[0]
        return first.tzinfo, type(first).__name__ == "Timestamp"
    style = batch._time_style
    return style.tz, style.pandas


def arrow_tz(tz):
    """The arrow name of a time zone ('UTC', '+02:00', 'Europe/Paris', ...)."""
    sample = datetime(2000, 1, 1, tzinfo=tz)
    return pa.array([sample]).type.tz


def time_ns(batch):
    """Event times as int64 epoch nanoseconds; for naive times, their wall clock as UTC."""
    return np.asarray(batch.times, dtype=np.int64)


def key_values(batch):
    """The event keys: an arrow array when the source can give them so (the values of one text
    column), else a list."""
    keys = batch.keys
    as_arrow = getattr(keys, "arrow", None)
    if as_arrow is not None:
        arr = as_arrow()
        if arr is not None:
            return arr
    return keys if isinstance(keys, list) else list(keys)


def field_values(rows, name, position=None):
    """The values of field `name` in row bodies (None where missing or not a dict); a list body
    gives its item at `position`, the place of the field among the columns it holds."""
    return [b.get(name) if type(b) is dict else _get(b, name, position) for b in rows]


def _get(body, name, position):
    if isinstance(body, dict):
        return body.get(name)
    if isinstance(body, list) and position is not None:
        return body[position]
    return None


def column_sample(cols, name):
    """The row value of the first non-null entry of a column (through its converter), or None."""
    arr = cols.data[name]
    absent = cols.absent.get(name)
    candidates = np.arange(len(arr))
    if absent is not None:
        candidates = candidates[~absent]
    if arr.dtype.kind == "M":
        candidates = candidates[~np.isnat(arr[candidates])]
    if len(candidates) == 0:
        return None
    i = int(candidates[0])
    convert = cols.converters.get(name)
    return convert(arr[i : i + 1])[0] if convert is not None else arr[i : i + 1].tolist()[0]


def is_plain_value(sample, kind):
    """Whether `sample`, a row value of a column of NumPy dtype kind `kind` (None when the column
    has no value), shows the column's converter only turns NumPy scalars into the matching Python
    ones (or datetimes): the array itself can then be written."""
    if sample is None:
        return True
    if kind == "M":
        return hasattr(sample, "tzinfo")
    if kind == "b":
        return isinstance(sample, bool | np.bool_)
    if kind in "iu":
        return isinstance(sample, int | np.integer) and not isinstance(sample, bool)
    if kind == "f":
        return isinstance(sample, float | np.floating)
    return kind in "OU"


def source_arrow_column(cols, name):
    """The arrow array a field was read from, when the column bodies are still those a file
    source made (so the array holds exactly the field's values) and no entry is absent; else None."""
    data = cols.data
    arrow_column = getattr(data, "arrow_column", None)
    if arrow_column is None or name not in data or name in data.overridden:
        return None
    if cols.absent_rows(name) is not None:
        return None
    column = arrow_column(name)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column
