"""Event times: the datetimes users see, and the int64 epoch nanoseconds (UTC) steps compute with.

Naive datetimes are taken as UTC, whatever the machine's time zone.
"""

from datetime import UTC, datetime, timedelta

import numpy as np

from .lazy import LazyModule, loaded

# pandas: imported by the paths that need it only
pd = LazyModule("pandas")

_EPOCH_AWARE = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_MICRO = timedelta(microseconds=1)
_INT64 = np.dtype(np.int64)

# The instants int64 epoch nanoseconds hold (the smallest int64 is NaT).
MIN_NS = int(np.iinfo(np.int64).min) + 1
MAX_NS = int(np.iinfo(np.int64).max)
TIME_RANGE = "1677-09-21 00:12:43 to 2262-04-11 23:47:16 UTC"
_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
TIME_UNITS = tuple(_NS_PER_UNIT)


class TimeOutOfRange(ValueError):
    """An event time outside what int64 epoch nanoseconds hold (TIME_RANGE); `index` is its
    position in the values converted, when there were several, and `detail` the message without
    the place it was found in."""

    def __init__(self, message, index=None, detail=None):
        super().__init__(message)
        self.index = index
        self.detail = message if detail is None else detail


def out_of_range(value, index=None, what="event time"):
    return TimeOutOfRange(
        f"{what} {value} is out of range: event times must lie within {TIME_RANGE} "
        "(int64 nanoseconds since 1970)",
        index,
    )


def to_ns(value):
    """Epoch nanoseconds (UTC) of one event time; TimeOutOfRange outside TIME_RANGE."""
    if isinstance(value, datetime):
        if type(value) is not datetime:
            # a pandas Timestamp is a datetime too, of a subclass
            pandas = loaded("pandas")
            if pandas is not None and isinstance(value, pandas.Timestamp):
                return _timestamp_ns(value)
        epoch = _EPOCH_NAIVE if value.tzinfo is None else _EPOCH_AWARE
        ns = ((value - epoch) // _MICRO) * 1000
        if not MIN_NS <= ns <= MAX_NS:
            raise out_of_range(value)
        return ns
    if isinstance(value, np.datetime64):
        return int(datetime64_ns(np.asarray([value]))[0])
    raise TypeError(f"event time must be a datetime, got {type(value).__name__}: {value!r}")


def _timestamp_ns(value):
    if value.unit != "ns":
        # a Timestamp of coarser unit may lie beyond what nanoseconds hold: read it exactly
        return to_ns(value.to_pydatetime())
    if value.tzinfo is None:
        return value.value
    return value.tz_convert("UTC").value if value.tz is not None else value.value


def to_ns_array(values):
    """Epoch nanoseconds (UTC) of a list of event times; TimeOutOfRange names the first one
    outside TIME_RANGE and its index."""
    try:
        return np.array([to_ns(value) for value in values], dtype=_INT64)
    except TimeOutOfRange:
        for i, value in enumerate(values):
            try:
                to_ns(value)
            except TimeOutOfRange as ex:
                ex.index = i
                raise
        raise


def datetime64_ns(values):
    """A datetime64 array of any unit as int64 epoch nanoseconds (NaT stays NaT, the smallest
    int64); TimeOutOfRange for the first value outside TIME_RANGE (NumPy would wrap it)."""
    unit, _ = np.datetime_data(values.dtype)
    if unit == "ns":
        return values.view(np.int64)
    if unit not in _NS_PER_UNIT:
        values = values.astype("datetime64[us]")
        unit = "us"
    return _scaled(values.view(np.int64), unit, ~np.isnat(values), lambda i: values[i])


def epoch_ns(ints, unit="s"):
    """Integer epoch times in `unit` ('s', 'ms', 'us' or 'ns') as int64 epoch nanoseconds;
    TimeOutOfRange for the first one outside TIME_RANGE."""
    ints = np.asarray(ints, dtype=np.int64) if ints.dtype != np.uint64 else ints
    if ints.dtype == np.uint64:
        big = ints > MAX_NS // _NS_PER_UNIT[unit]
        if big.any():
            i = int(np.argmax(big))
            raise out_of_range(f"{int(ints[i])} ({unit} since 1970)", i)
        ints = ints.astype(np.int64)
    return _scaled(ints, unit, None, lambda i: f"{int(ints[i])} ({unit} since 1970)")


def _scaled(ints, unit, valid, show):
    factor = _NS_PER_UNIT[unit]
    if factor == 1:
        return ints
    lowest = -(-MIN_NS // factor)
    highest = MAX_NS // factor
    bad = (ints < lowest) | (ints > highest)
    if valid is not None:
        bad &= valid
    if bad.any():
        i = int(np.argmax(bad))
        raise out_of_range(show(i), i)
    out = ints * factor
    if valid is not None and not valid.all():
        out[~valid] = ints[~valid]
    return out


class TimeStyle:
    """How to turn epoch nanoseconds back into the time objects a source handed out.

    `tz` is None for naive datetimes; `pandas` selects `pandas.Timestamp` objects over
    `datetime.datetime`.
    """

    __slots__ = ("tz", "pandas")

    def __init__(self, tz=None, pandas=False):
        self.tz = tz
        self.pandas = pandas

    def values(self, ns):
        if self.pandas:
            index = pd.DatetimeIndex(ns.astype("datetime64[ns]"))
            if self.tz is not None:
                index = index.tz_localize("UTC").tz_convert(self.tz)
            return list(index)
        return self.datetimes((ns // 1000).astype("datetime64[us]"))

    def datetimes(self, micros):
        """`datetime.datetime`s (None for NaT) of a datetime64[us] array of UTC instants, whatever
        their year."""
        micros = micros.tolist()
        if self.tz is None:
            return micros
        if self.tz is UTC:
            return [None if m is None else m.replace(tzinfo=UTC) for m in micros]
        return [None if m is None else m.replace(tzinfo=UTC).astimezone(self.tz) for m in micros]


NAIVE = TimeStyle()
UTC_DATETIME = TimeStyle(UTC)


def now():
    return datetime.now(UTC)
