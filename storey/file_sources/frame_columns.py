"""pandas DataFrames as event bodies: one NumPy column per body field, sliced into batches.

The reference makes each row's body from `DataFrame.itertuples()`: the columns under the names
a namedtuple gives them (a name that is not an identifier, is a keyword, starts with an
underscore or repeats an earlier one becomes `_<position>`, counting the index as position 0),
followed by the index levels when the index is named (or is a MultiIndex), a level replacing a
column of the same name. The values are what iterating each column gives: Python scalars for
NumPy dtypes, pandas Timestamps for datetimes, NumPy scalars and pd.NA for nullable dtypes.
"""

import collections

import numpy as np
import pandas as pd
import pyarrow as pa

from ..columns import Columns
from .value_kinds import PLAIN, NullableKind, ObjectKind, TimedeltaKind, TimestampKind, object_array

_NULLABLE_SCALARS = {
    **{f"{p}Int{b}": getattr(np, f"{p.lower()}int{b}") for p in ("", "U") for b in (8, 16, 32, 64)},
    "Float32": np.float32,
    "Float64": np.float64,
}


class FrameFields:
    """The body fields of one DataFrame: names and whole-frame NumPy columns with their kinds.

    `original` maps each body field to the DataFrame column it came from (renamed columns can be
    named either way as key_field, time_field or id_field).
    """

    def __init__(self, df):
        self.n = len(df)
        self.data = {}
        self.kinds = {}
        # text columns pandas keeps in arrow, and those of them asked for as arrow (keys are
        # looked up without str objects)
        self._arrow_backed = {}
        self._text = {}
        aliases = []
        renamed = collections.namedtuple("Row", ["Index", *df.columns], rename=True)._fields[1:]
        for position, name in enumerate(renamed):
            self._add(name, df.iloc[:, position])
            aliases.append((df.columns[position], name))
        index = df.index
        if isinstance(index, pd.MultiIndex):
            for level, name in enumerate(index.names):
                self._add(name, index.get_level_values(level))
        elif index.name is not None:
            self._add(index.name, index)
        self.original = {name: name for name in self.data}
        for column, name in aliases:
            if name in self.data:
                self.original.setdefault(column, name)

    def _add(self, name, values):
        dtype = values.dtype
        if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
            self._arrow_backed[name] = values
        else:
            self._arrow_backed.pop(name, None)
        values, kind = column_values(values)
        self.data[name] = values
        if kind is PLAIN:
            self.kinds.pop(name, None)
        else:
            self.kinds[name] = kind

    def columns(self, start, stop):
        """`Columns` of rows [start, stop)."""
        data = FrameData({name: values[start:stop] for name, values in self.data.items()})
        data.frame = self
        data.start = start
        return Columns(data, min(stop, self.n) - start, converters=self.kinds)

    def text(self, name):
        """The arrow string array under field `name` when pandas holds it in arrow, else None;
        made the first time it is asked for."""
        text = self._text.get(name)
        if text is None and name in self._arrow_backed:
            text = self._text[name] = _arrow_text(self._arrow_backed[name])
        return text

    def field(self, name):
        """The body field a key_field/time_field/id_field names, or None."""
        return self.original.get(name)


class FrameData(dict):
    """A batch's body fields as NumPy arrays, rows from `start` of the `frame` (FrameFields)
    they were sliced from."""

    __slots__ = ("frame", "start")

    def text(self, name):
        """Field `name` as the arrow string array pandas holds it in (a zero-copy slice), or
        None when pandas does not hold it so."""
        text = self.frame.text(name)
        if text is None:
            return None
        return text.slice(self.start, len(self[name]))


def _arrow_text(values):
    """The arrow string array under a pandas text column stored in arrow."""
    text = pa.array(values.array)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if pa.types.is_large_string(text.type) and text.nbytes < 2**31:
        text = text.cast(pa.string())  # as a Parquet or CSV source gives text
    return text


def column_values(values):
    """(NumPy array, kind) for a pandas Series or Index."""
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        ns = values.array.as_unit("ns").asi8 if hasattr(values, "array") else values.as_unit("ns").asi8
        return np.asarray(ns).view("datetime64[ns]"), TimestampKind(dtype.tz)
    if isinstance(dtype, np.dtype):
        if dtype.kind == "M":
            return np.asarray(values).astype("datetime64[ns]"), TimestampKind(None)
        if dtype.kind == "m":
            return np.asarray(values).astype("timedelta64[ns]"), TimedeltaKind()
        if dtype.kind == "O":
            return np.asarray(values), PLAIN
        return np.asarray(values), PLAIN
    if isinstance(dtype, pd.CategoricalDtype):
        return np.asarray(values), PLAIN
    if isinstance(dtype, pd.StringDtype):
        strings = values.to_numpy(dtype=object, na_value=None)
        if dtype.na_value is pd.NA:
            return strings, NullableKind(None)
        return strings, PLAIN
    name = getattr(dtype, "name", "")
    if name in _NULLABLE_SCALARS:
        return values.to_numpy(dtype=np.float64, na_value=np.nan), NullableKind(_NULLABLE_SCALARS[name])
    if name == "boolean":
        return values.to_numpy(dtype=object, na_value=None), NullableKind(np.bool_)
    return object_array(list(values)), ObjectKind()
