"""pandas DataFrames as event bodies: one NumPy column per body field, sliced into batches.

The reference makes each row's body from `DataFrame.itertuples()`: the columns under the names
a namedtuple gives them (a name that is not an identifier, is a keyword, starts with an
underscore or repeats an earlier one becomes `_<position>`, counting the index as position 0),
followed by the index levels when the index is named (or is a MultiIndex), a level replacing a
column of the same name. The values are what iterating each column gives: Python scalars for
NumPy dtypes, pandas Timestamps for datetimes, NumPy scalars and pd.NA for nullable dtypes.
"""

import collections
from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from ...core.columns import Columns
from ...core.lazy import LazyModule
from ...core.times import TimeOutOfRange, datetime64_ns
from ...core.value_kinds import PLAIN, NullableKind, ObjectKind, TimedeltaKind, TimestampKind, object_array

pd = LazyModule("pandas")

_NULLABLE_SCALARS = {
    **{f"{p}Int{b}": getattr(np, f"{p.lower()}int{b}") for p in ("", "U") for b in (8, 16, 32, 64)},
    "Float32": np.float32,
    "Float64": np.float64,
}


class FrameFields:
    """The body fields of one DataFrame: names and whole-frame columns with their kinds (NumPy
    arrays, or the pandas Series of a text column pandas holds in arrow).

        `original` maps each body field to the DataFrame column it came from (renamed columns can be
        named either way as key_field, time_field or id_field).
    """

    def __init__(self, df):
        self.n = len(df)
        self.data = {}
        self.kinds = {}
        # text columns pandas keeps in arrow, and their arrow arrays (made on first use)
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
        self.data[name] = values
        if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
            # kept in arrow: NumPy values are made per batch, only when a step asks for them
            self._arrow_backed[name] = values
            kind = NullableKind(None) if dtype.na_value is pd.NA else PLAIN
        else:
            self._arrow_backed.pop(name, None)
            try:
                self.data[name], kind = column_values(values)
            except TimeOutOfRange as ex:
                row = ex.index + 1
                raise TimeOutOfRange(f"row {row}, field {name!r}: {ex.detail}", ex.index, ex.detail) from None
        if kind is PLAIN:
            self.kinds.pop(name, None)
        else:
            self.kinds[name] = kind

    def columns(self, start, stop):
        """`Columns` of rows [start, stop)."""
        n = min(stop, self.n) - start
        arrays = {}
        texts = {}
        for name, values in self.data.items():
            if name in self._arrow_backed:
                texts[name] = self._whole_text(name).slice(start, n)
            else:
                arrays[name] = values[start:stop]
        return Columns(FrameData(list(self.data), arrays, texts), n, converters=self.kinds)

    def _whole_text(self, name):
        text = self._text.get(name)
        if text is None:
            text = self._text[name] = _arrow_text(self._arrow_backed[name])
        return text

    def field(self, name):
        """The body field a key_field/time_field/id_field names, or None."""
        return self.original.get(name)


class FrameData(Mapping):
    """A batch's body fields as NumPy arrays. Text columns pandas holds in arrow stay arrow
    arrays (`text`, `arrow_column`: a key lookup or a file target uses them as they are) until
    a step asks for their values."""

    __slots__ = ("_names", "_arrays", "_texts", "overridden")

    def __init__(self, names, arrays, texts):
        self._names = names
        self._arrays = arrays
        self._texts = texts
        # the fields that have no arrow array (see `arrow_column`)
        self.overridden = frozenset(names).difference(texts)

    def __getitem__(self, name):
        values = self._arrays.get(name)
        if values is None:
            values = self._arrays[name] = self._texts[name].to_numpy(zero_copy_only=False)
        return values

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)

    def __contains__(self, name):
        return name in self._arrays or name in self._texts

    def text(self, name):
        """Field `name` as the arrow string array pandas holds it in, or None when pandas does
        not hold it so."""
        return self._texts.get(name)

    def arrow_column(self, name):
        """The arrow array of a text field not in `overridden`."""
        return self._texts[name]

    def none_mask(self, name):
        """Where the value of field `name` is None, or None when only its values can tell."""
        text = self._texts.get(name)
        if text is None:
            return None
        if not text.null_count:
            return np.zeros(len(text), dtype=bool)
        return text.is_null().to_numpy(zero_copy_only=False)

    def filter(self, mask):
        """The rows where the boolean array `mask` is True."""
        arrays = {name: values[mask] for name, values in self._arrays.items()}
        texts = {name: text.filter(pa.array(mask)) for name, text in self._texts.items()}
        return FrameData(self._names, arrays, texts)


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
        instants = values.array if hasattr(values, "array") else values
        ns = datetime64_ns(np.asarray(instants.asi8).view(f"datetime64[{dtype.unit}]"))
        return ns.view("datetime64[ns]"), TimestampKind(dtype.tz)
    if isinstance(dtype, np.dtype):
        if dtype.kind == "M":
            return datetime64_ns(np.asarray(values)).view("datetime64[ns]"), TimestampKind(None)
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
