"""Event times: the datetimes users see, and the int64 epoch nanoseconds (UTC) steps compute with.

Naive datetimes are taken as UTC, whatever the machine's time zone.
"""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

_EPOCH_AWARE = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_MICRO = timedelta(microseconds=1)


def to_ns(value):
    """Epoch nanoseconds (UTC) of one event time."""
    if isinstance(value, pd.Timestamp):
        if value.tzinfo is None:
            return value.value
        return value.tz_convert("UTC").value if value.tz is not None else value.value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return ((value - _EPOCH_NAIVE) // _MICRO) * 1000
        return ((value - _EPOCH_AWARE) // _MICRO) * 1000
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    raise TypeError(f"event time must be a datetime, got {type(value).__name__}: {value!r}")


def to_ns_array(values):
    """Epoch nanoseconds (UTC) of a list of event times."""
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        out[i] = to_ns(value)
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
        micros = (ns // 1000).astype("datetime64[us]").tolist()
        if self.tz is None:
            return micros
        if self.tz is UTC:
            return [m.replace(tzinfo=UTC) for m in micros]
        return [m.replace(tzinfo=UTC).astimezone(self.tz) for m in micros]


NAIVE = TimeStyle()
UTC_DATETIME = TimeStyle(UTC)


def now():
    return datetime.now(UTC)
