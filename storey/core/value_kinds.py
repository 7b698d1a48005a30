"""How a stored column becomes the values a row dict holds.

A file source keeps each body field as a NumPy column and, in `Columns.converters`, one of the
kinds below: a callable turning the column into the list of row values the reference's bodies
hold (Python ints and floats, pandas Timestamps for DataFrame and Parquet times, datetimes for
parsed CSV times, None or NaN where a value is missing). Each kind also says which row values
are None (a row whose key is None is skipped) and which are missing in the wider sense (None,
NaN, NaT or NA: a list key with such a part is skipped), and which arrow type the column came
from (`arrow_type`, None when the NumPy dtype says it all), so that a target can write the
column back as it was read.
"""

import numpy as np

from .lazy import LazyModule
from .times import TimeStyle

# pandas: imported by the paths that need it only
pd = LazyModule("pandas")

_is_none = np.frompyfunc(lambda v: v is None, 1, 1)


def object_array(values):
    """A 1-D object array holding `values` (lists and arrays stay elements, not dimensions)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


class PlainKind:
    """Row values are the column's own values (NumPy scalars turned into Python ones)."""

    def __init__(self, arrow_type=None):
        self.arrow_type = arrow_type

    def __call__(self, values):
        return values.tolist()

    def none_mask(self, values):
        if values.dtype.kind != "O":
            return np.zeros(len(values), dtype=bool)
        try:
            mask = values == None  # noqa: E711 (elementwise)
        except Exception:
            mask = None
        if isinstance(mask, np.ndarray) and mask.dtype == bool and mask.shape == values.shape:
            return mask
        return _is_none(values).astype(bool)

    def missing_mask(self, values):
        kind = values.dtype.kind
        if kind in "fc":
            return np.isnan(values)
        if kind in "mM":
            return np.isnat(values)
        if kind == "O":
            return np.asarray(pd.isna(values), dtype=bool)
        return np.zeros(len(values), dtype=bool)

    def no_value_mask(self, values):
        """Where a row holds no value to aggregate: None (a plain float column's NaN is a value)."""
        return np.asarray(self.none_mask(values), dtype=bool)


PLAIN = PlainKind()


class ObjectKind(PlainKind):
    """An object column whose elements are the row values as they are (NumPy scalars included)."""

    def __call__(self, values):
        return list(values)


class DateKind(PlainKind):
    """A datetime64[D] column whose row values are `datetime.date`s, None where missing."""

    def none_mask(self, values):
        return np.isnat(values)


class TimestampKind(PlainKind):
    """A datetime64[ns] column of UTC instants whose row values are pandas Timestamps in `tz`
    (naive when `tz` is None); NaT stays NaT."""

    def __init__(self, tz=None, arrow_type=None):
        super().__init__(arrow_type)
        self.tz = tz
        self.style = TimeStyle(tz, pandas=True)

    def __call__(self, values):
        return self.style.values(values.view(np.int64))

    def none_mask(self, values):
        return np.zeros(len(values), dtype=bool)


class DatetimeKind(PlainKind):
    """A datetime64[us] column of UTC instants whose row values are `datetime.datetime`s in `tz`
    (naive when `tz` is None); NaT becomes None. Times parsed from CSV text are held so."""

    def __init__(self, tz=None, arrow_type=None):
        super().__init__(arrow_type)
        self.tz = tz
        self.style = TimeStyle(tz)

    def __call__(self, values):
        return self.style.datetimes(values.astype("datetime64[us]"))

    def none_mask(self, values):
        return np.isnat(values)


class TimedeltaKind(PlainKind):
    """A timedelta64[ns] column whose row values are pandas Timedeltas (NaT stays NaT)."""

    def __call__(self, values):
        return list(pd.TimedeltaIndex(values))


class IntOrNaNKind(PlainKind):
    """A float64 column of integers with NaN where a value is missing; rows hold Python ints, and
    NaN for the missing ones (a CSV int column with empty cells)."""

    def __call__(self, values):
        return [int(v) if v == v else v for v in values.tolist()]


class NullableKind(PlainKind):
    """A column of a pandas nullable dtype (Int64, boolean, string): rows hold the NumPy scalar
    (or str) of each value and pd.NA where one is missing, as iterating such a column gives.

    Stored as float64 with NaN (integers) or as objects with None (booleans, strings)."""

    def __init__(self, scalar=None, arrow_type=None):
        super().__init__(arrow_type)
        self.scalar = scalar

    def __call__(self, values):
        scalar = self.scalar
        na = pd.NA
        if values.dtype.kind == "f":
            return [na if v != v else scalar(v) for v in values.tolist()]
        if scalar is None:
            return [na if v is None else v for v in values.tolist()]
        return [na if v is None else scalar(v) for v in values.tolist()]

    def none_mask(self, values):
        return np.zeros(len(values), dtype=bool)

    def no_value_mask(self, values):
        """NA, which a nullable column stores as NaN or None."""
        return np.asarray(self.missing_mask(values), dtype=bool)
