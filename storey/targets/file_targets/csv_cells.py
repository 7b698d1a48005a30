"""CSV cell texts of whole columns, as `str()` writes each value, computed with arrow and NumPy
(and, for floats in a long job, a compiled kernel: `float_text`).

A cell is '' for None and `str(value)` otherwise: ints in decimal, floats as `repr()`, bools as
'True'/'False', datetimes and pandas Timestamps as `str()` writes them. The functions here give
the unquoted texts of a column as an arrow string array (null for an empty cell), without a
Python object per value wherever the column holds one plain type.
"""

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...core.lazy import LazyModule
from ...core.times import TimeOutOfRange, datetime64_ns
from .values import column_sample, is_plain_value, source_arrow_column, time_info, time_ns

pd = LazyModule("pandas")

NAT = np.iinfo(np.int64).min
_NS_PER_SECOND = 1_000_000_000


# ---- floats
# The compiled kernel (`float_text`) writes floats in half the time arrow takes, but loading Numba
# and the kernel costs 0.3-0.4 s once per process: it is loaded once the process has written this
# many floats (a job long enough to pay it back); until then arrow writes them.
KERNEL_AFTER_FLOATS = 2_000_000
_floats_written = 0
_float_kernel = None


def format_floats(values):
    """Floats as Python's repr() writes them (an arrow string array)."""
    global _floats_written, _float_kernel
    values = np.asarray(values, dtype=np.float64)
    if _float_kernel is None:
        _floats_written += len(values)
        if _floats_written < KERNEL_AFTER_FLOATS:
            return arrow_float_texts(values)
        _float_kernel = _load_float_kernel()
    return _float_kernel(values)


def _load_float_kernel():
    try:
        from .float_text import float_texts
    except ImportError:  # no working Numba: arrow then writes every float
        return arrow_float_texts
    return float_texts


def arrow_float_texts(values):
    """Floats as repr() writes them, with arrow's cast: the same shortest digits, laid out as
    repr() lays them out where arrow differs (whole numbers, large and tiny magnitudes)."""
    text = pc.cast(pa.array(values), pa.string())
    finite = np.isfinite(values)
    magnitude = np.abs(values)
    with np.errstate(invalid="ignore"):
        odd = finite & ((magnitude >= 1e9) | ((magnitude < 1e-4) & (values != 0)))
        integral = finite & ~odd & (values == np.floor(values))
    if integral.any():
        where = np.flatnonzero(integral)
        whole = pc.binary_join_element_wise(text.take(pa.array(where)), ".0", "")
        text = pc.replace_with_mask(text, pa.array(integral), whole)
    if odd.any():
        where = np.flatnonzero(odd)
        text = pc.replace_with_mask(text, pa.array(odd), pa.array([repr(v) for v in values[where].tolist()]))
    return text


# ---- times
def format_times(ns, tz, pandas_style, missing="NaT"):
    """Times as `str()` writes them: 'YYYY-MM-DD HH:MM:SS[.fraction][+HH:MM]'.

    `ns` are epoch nanoseconds (UTC) shown in `tz` (None: naive). The fraction has 6 digits
    when the microseconds are not 0, or, for `pandas.Timestamp`s (`pandas_style`), 9 when the
    nanoseconds are not 0. NaT is written `missing` ('NaT' for Timestamps; None, an empty cell,
    for datetimes read as None)."""
    ns = np.asarray(ns, dtype=np.int64)
    nat = ns == NAT
    has_nat = bool(nat.any())
    if has_nat:
        ns = np.where(nat, 0, ns)
    offsets = _utc_offsets(ns, tz)
    wall = ns if offsets is None or (np.isscalar(offsets) and offsets == 0) else ns + offsets
    text = _wall_texts(wall, pandas_style)
    if offsets is not None:
        if np.isscalar(offsets):
            text = pc.binary_join_element_wise(text, _offset_text(int(offsets) // _NS_PER_SECOND), "")
        else:
            distinct, inverse = np.unique(offsets // _NS_PER_SECOND, return_inverse=True)
            suffix = pa.array([_offset_text(int(s)) for s in distinct]).take(pa.array(inverse.reshape(-1)))
            text = pc.binary_join_element_wise(text, suffix, "")
    if has_nat:
        text = pc.if_else(pa.array(nat), pa.scalar(missing, pa.string()), text)
    return text


def _utc_offsets(ns, tz):
    """The zone's UTC offsets (ns) at the instants `ns`: None for naive times, an int for a
    zone with a fixed offset, else an array."""
    if tz is None:
        return None
    if isinstance(tz, timezone):
        return tz.utcoffset(None) // timedelta(microseconds=1) * 1000
    if str(tz) == "UTC":
        return 0
    index = pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
    return index.tz_localize(None).asi8 - index.asi8


def _wall_texts(wall, pandas_style):
    """'YYYY-MM-DD HH:MM:SS[.fraction]' of wall-clock epoch nanoseconds."""
    if not (wall % _NS_PER_SECOND).any():
        return _cast_times(wall // _NS_PER_SECOND, "s")
    micros = wall // 1000
    if pandas_style:
        nanos = (wall % 1000) != 0
        if nanos.any():
            text = _cast_times(wall, "ns")
            if nanos.all():
                return text
            return pc.if_else(pa.array(nanos), text, _micro_texts(micros))
    return _micro_texts(micros)


def _micro_texts(micros):
    fraction = (micros % 1_000_000) != 0
    text = _cast_times(micros, "us")
    if fraction.all():
        return text
    return pc.if_else(pa.array(fraction), text, _cast_times(micros // 1_000_000, "s"))


def _cast_times(values, unit):
    return pc.cast(pa.array(values, pa.timestamp(unit)), pa.string())


def _offset_text(seconds):
    """A UTC offset as str() writes it: +HH:MM, and :SS when not 0 (local mean times)."""
    sign = "+" if seconds >= 0 else "-"
    minutes, seconds = divmod(abs(seconds), 60)
    text = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return text if not seconds else f"{text}:{seconds:02d}"


def time_texts(batch):
    """The event times as `str()` writes them."""
    tz, pandas_style = time_info(batch)
    values = batch._time_values
    if values is not None:
        kind, zone = type(values[0]), values[0].tzinfo
        if not all(type(v) is kind and v.tzinfo is zone for v in values):
            return pa.array([str(t) for t in values], pa.string())
    return format_times(time_ns(batch), tz, pandas_style)


# ---- row values
def value_texts(values):
    """Cell texts of one column of row values; computed with arrow when all values are of one
    plain type (str, int, float, bool, datetimes of one zone)."""
    kinds = set(map(type, values))
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind is str:
            return pa.array(values, pa.string())
        if kind is float:
            return format_floats(np.array(values, dtype=np.float64))
        if kind is bool:
            return pc.if_else(pa.array(values, pa.bool_()), "True", "False")
        if kind is int:
            try:
                return pc.cast(pa.array(np.array(values, dtype=np.int64)), pa.string())
            except OverflowError:
                pass
        if kind is pd.Timestamp or kind is datetime:
            zones = {v.tzinfo for v in values}
            if len(zones) == 1:
                zone = zones.pop()
                index = pd.DatetimeIndex(values).as_unit("ns")
                ns = (index if zone is None else index.tz_convert("UTC")).asi8
                return format_times(ns, zone, kind is pd.Timestamp)
    return python_texts(values)


def python_texts(values):
    """Cell texts of row values, one `str()` per value."""
    return pa.array(["" if v is None else (v if type(v) is str else str(v)) for v in values], pa.string())


# ---- column bodies
def column_texts(cols, name):
    """Cell texts of a body field held in `Columns` (missing where the field is absent)."""
    if name not in cols:
        return pa.nulls(cols.n, pa.string())
    text = _as_read_texts(cols, name)
    if text is not None:
        return text
    arr = cols.data[name]
    absent = cols.absent_rows(name)
    kind = arr.dtype.kind
    sample = column_sample(cols, name) if name in cols.converters else None
    plain = name not in cols.converters or is_plain_value(sample, kind)
    if not plain:
        text = python_texts(cols.column_list(name))
    elif kind == "f":
        text = format_floats(arr)
    elif kind in "iu":
        text = pc.cast(pa.array(arr), pa.string())
    elif kind == "b":
        text = pc.if_else(pa.array(arr), "True", "False")
    elif kind == "M":
        pandas_style = sample is None or type(sample).__name__ == "Timestamp"
        tz = getattr(sample, "tzinfo", None)
        try:
            text = format_times(datetime64_ns(arr), tz, pandas_style, _missing_time_text(cols, name))
        except TimeOutOfRange:
            # beyond what nanoseconds hold: written from the row values
            text = python_texts(cols.column_list(name))
    elif kind == "U":
        text = pa.array(arr, pa.string())
    else:
        try:
            text = pa.array(arr, from_pandas=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            text = None
        if text is None or not (pa.types.is_string(text.type) or pa.types.is_null(text.type)):
            text = python_texts(arr.tolist() if kind == "O" else cols.column_list(name))
        else:
            text = text.cast(pa.string())
    if absent is not None:
        text = pc.if_else(pa.array(absent), pa.scalar(None, pa.string()), text)
    return text


def _as_read_texts(cols, name):
    """Cell texts made from the arrow array a file source read the field from, when its row
    values follow from it alone: strings as they are, ints without nulls in decimal, ints with
    nulls (a CSV int column with empty fields: NaN where empty) likewise with 'nan'."""
    as_read = source_arrow_column(cols, name)
    if as_read is None or pa.types.is_dictionary(cols.data.arrow_column(name).type):
        return None  # (a category's missing values are NaN)
    typ = as_read.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return as_read.cast(pa.string())
    if pa.types.is_integer(typ):
        if not as_read.null_count and cols.data[name].dtype.kind in "iu":
            return pc.cast(as_read, pa.string())
        if type(cols.converters.get(name)).__name__ == "IntOrNaNKind":
            return pc.fill_null(pc.cast(as_read, pa.string()), "nan")
    return None


def _missing_time_text(cols, name):
    """How a NaT of a time column is written: as its row value (None for datetimes, NaT for
    pandas Timestamps)."""
    convert = cols.converters.get(name)
    if convert is None:
        return "NaT"
    value = convert(np.array(["NaT"], dtype=cols.data[name].dtype))[0]
    return None if value is None else str(value)
