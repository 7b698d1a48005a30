"""Times written as text (CSV fields): parsed a whole column at a time where possible.

Values are read as the reference reads them: ISO-8601 (`datetime.fromisoformat`), or with a
`timestamp_format` as pandas reads one value with `pd.to_datetime(value, format=...)`. Each
value keeps its own offset: naive text gives naive datetimes, '+02:00' an aware one in that
fixed zone. A column whose values are all naive, or all share one offset, becomes an arrow
timestamp column of UTC instants (`ParsedTimes.array`) without any per-value Python; any other
column is parsed value by value (`ParsedTimes.objects`). Empty fields (nulls) give None.
"""

import re
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...core.arrow_arrays import from_numpy, to_numpy
from ...core.lazy import LazyModule
from ...core.value_kinds import DatetimeKind, ObjectKind, object_array
from .arrow_input import ColumnPlan

pd = LazyModule("pandas")

_OFFSET = r"(?P<offset>Z|[+-]\d\d(?::?\d\d(?::?\d\d(?:\.\d+)?)?)?)$"


class ParsedTimes:
    """A parsed column: an arrow timestamp[us] array of instants with the values' zone (`tz`,
    None for naive), or an object array of datetimes/None (`objects`) when zones differ."""

    def __init__(self, array=None, tz=None, objects=None):
        self.array = array
        self.tz = tz
        self.objects = objects

    def plan(self):
        """How the parsed column becomes NumPy values and row values."""
        if self.array is not None:
            return ColumnPlan(_us_instants, DatetimeKind(self.tz, self.array.type), True)
        return ColumnPlan(lambda _: self.objects, ObjectKind())

    def column(self):
        """The parsed column for an arrow record batch (objects become an opaque null column)."""
        if self.array is not None:
            return self.array
        return pa.nulls(len(self.objects))


def _us_instants(arr):
    ints = arr.view(pa.int64())
    if arr.null_count:
        ints = ints.fill_null(np.iinfo(np.int64).min)
    return to_numpy(ints).view("datetime64[us]")


class TimeParseError(ValueError):
    """A text field that is not a time in the expected form; `index` is its row in the column."""

    def __init__(self, message, index):
        super().__init__(message)
        self.index = index


def parse_times(strings, timestamp_format=None):
    """ParsedTimes for an arrow string array; TimeParseError for a value that does not parse."""
    if timestamp_format is None:
        return _parse_iso(strings)
    return _parse_format(strings, timestamp_format)


def _parse_iso(strings):
    sample = strings.drop_null()[:1] if strings.null_count else strings[:1]
    naive = _cast_to_micros(strings, None, sample)
    if naive is not None:
        return ParsedTimes(naive)
    instants = _cast_to_micros(strings, "UTC", sample)
    if instants is not None:
        offsets = pc.unique(pc.struct_field(pc.extract_regex(strings, _OFFSET), 0).drop_null())
        if len(offsets) <= 1:
            tz = UTC if len(offsets) == 0 else _fixed_zone(offsets[0].as_py())
            return ParsedTimes(instants.cast(pa.timestamp("us", tz=_arrow_zone(tz))), tz)
    return ParsedTimes(objects=_each(strings, datetime.fromisoformat, "an ISO-8601 time"))


def _cast_to_micros(strings, tz, sample):
    """The ISO-8601 texts as a timestamp[us] array (None when arrow cannot read them all), the
    digits after the sixth of a fraction dropped as `datetime.fromisoformat` drops them.

    Each way of reading is tried on one value (`sample`) before the whole column: a cast that
    fails costs as much as one that succeeds."""
    for unit in ("us", "ns"):
        try:
            pc.cast(sample, pa.timestamp(unit, tz=tz))
            times = pc.cast(strings, pa.timestamp(unit, tz=tz))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if unit == "ns":
            mask = to_numpy(times.is_null()) if times.null_count else None
            micros = np.floor_divide(to_numpy(times.view(pa.int64()).fill_null(0)), 1000)
            times = from_numpy(micros, pa.timestamp("us", tz=tz), mask=mask)
        return times
    return None


def _parse_format(strings, fmt):
    values = strings.to_numpy(zero_copy_only=False)
    present = values[strings.is_valid().to_numpy(zero_copy_only=False)] if strings.null_count else values
    try:
        parsed = pd.to_datetime(pd.Series(values, dtype=object), format=fmt)
    except (ValueError, TypeError, OverflowError):
        parsed = None
    aware = parsed is not None and isinstance(parsed.dtype, pd.DatetimeTZDtype)
    if parsed is not None and len(present) and (aware or parsed.dtype.kind == "M"):
        tz = _fixed_zone_of(parsed.dtype.tz) if aware else None
        if tz is not None or not aware:
            utc = parsed.dt.tz_convert("UTC").dt.tz_localize(None) if aware else parsed
            us = utc.to_numpy(dtype="datetime64[us]")
            mask = np.isnat(us)
            array = pa.array(us.view(np.int64), pa.timestamp("us", tz=_arrow_zone(tz)), mask=mask)
            return ParsedTimes(array, tz)

    def one(value):
        return pd.to_datetime(value, format=fmt).to_pydatetime()

    return ParsedTimes(objects=_each(strings, one, f"a time in the format {fmt!r}"))


def _each(strings, parse, expected):
    out = []
    for i, value in enumerate(strings.to_pylist()):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(parse(value))
        except (ValueError, TypeError, OverflowError) as ex:
            raise TimeParseError(f"{value!r} is not {expected} ({ex})", i) from None
    return object_array(out)


def _fixed_zone(text):
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = re.sub(r"[^0-9.]", "", text[1:])
    hours = int(digits[:2])
    minutes = int(digits[2:4] or 0)
    seconds = float(digits[4:] or 0)
    delta = sign * timedelta(hours=hours, minutes=minutes, seconds=seconds)
    return UTC if not delta else timezone(delta)


def _fixed_zone_of(tz):
    """A datetime.timezone for a fixed-offset tz object (pandas' parse of %z), else None."""
    offset = tz.utcoffset(None) if hasattr(tz, "utcoffset") else None
    if offset is None:
        return None
    return UTC if not offset else timezone(offset)


def _arrow_zone(tz):
    if tz is None:
        return None
    if tz is UTC:
        return "UTC"
    total = int(tz.utcoffset(None).total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    return f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"
