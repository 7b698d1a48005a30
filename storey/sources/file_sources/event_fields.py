"""From body columns to events: the key, time and id of each row, and the rows to skip.

A replay source names body fields for the key (one field, or a list of them), the time and the
id. Rows whose key is missing are skipped, as the reference skips them: a single key is missing
when its value is None; a list key when any part is None (CSV) or also NaN/NaT/NA (DataFrames
and Parquet). Event times come from the time field's column without building row values when the
column holds instants (timestamps, parsed CSV times, epoch integers); otherwise each value is
read as the reference reads it (ISO-8601 strings, datetimes, epoch seconds). A row whose time is
missing (None, NaN, NaT, NA) or outside what int64 nanoseconds hold is an error naming the
source, the data, the row and the field: it could be placed in no window.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from ...core.batch import EventBatch
from ...core.columns import Columns
from ...core.times import (
    NAIVE,
    TIME_UNITS,
    UTC_DATETIME,
    TimeOutOfRange,
    datetime64_ns,
    epoch_ns,
    to_ns,
    to_ns_array,
)
from ...core.value_kinds import PLAIN, DatetimeKind, TimestampKind
from .arrow_input import ArrowColumnData, filter_columns
from .frame_columns import FrameData
from .time_text import TimeParseError, parse_times


class EventFields:
    """Which body fields make each event's key, time and id.

    :param key: a field name, a list of field names, or None.
    :param time: a field name or None (events then get the time they are read, in
        `now_style`: aware UTC datetimes, or naive ones as CSVSource gives).
    :param id: a field name or None (ids are generated).
    :param list_key_skips_nan: whether a list key with a NaN/NaT/NA part is skipped too.
    :param time_unit: the unit of integer times ('s', 'ms', 'us' or 'ns' since 1970).
    :param step: the source's name, and `labels` the names the user gave fields by, for errors.
    :param on_skipped: called with the number of rows of each batch skipped for a missing key.
    """

    def __init__(
        self,
        key=None,
        time=None,
        id=None,
        list_key_skips_nan=True,
        now_style=UTC_DATETIME,
        time_unit=None,
        step="source",
        labels=None,
        on_skipped=None,
    ):
        self.key = key
        self.time = time
        self.id = id
        self.list_key_skips_nan = list_key_skips_nan
        self.now_style = now_style
        self.time_unit = time_unit or "s"
        self.step = step
        self.labels = labels or {}
        self.on_skipped = on_skipped

    def batch(self, columns, ids, where, body=None, list_bodies=False, first_row=1):
        """The events of the rows of `columns`, leaving out rows whose key is missing.

        `ids` is the flow's IdSequence. The bodies are `body` (`Columns` of the same rows), or
        `columns` themselves; with `list_bodies` each body is the list of the body columns' values
        (`Columns.list_rows`). `where` (a file name) and `first_row` (the number of the first
        row in it) place errors.
        """
        keep = self._kept_rows(columns)
        if keep is not None:
            if self.on_skipped is not None:
                self.on_skipped(int(columns.n - keep.sum()))
            columns = filter_columns(columns, keep)
            if body is not None:
                body = filter_columns(body, keep)
        n = columns.n
        keys = self._keys(columns)
        try:
            times, time_values, style = self._times(columns, where)
        except (TimeOutOfRange, MissingTime) as ex:
            index = ex.index if keep is None else int(np.flatnonzero(keep)[ex.index])
            row = first_row + index
            label = self.labels.get(self.time, self.time)
            detail = getattr(ex, "detail", ex)
            raise type(ex)(f"{self.step}: {where}, row {row}, time_field {label!r}: {detail}", row) from None
        if self.id is None:
            event_ids = ids.reserve(n)
        else:
            event_ids = columns.column_list(self.id)
        body = columns if body is None else body
        if list_bodies:
            # the lists are built from the columns only if a step asks for rows
            body = Columns(body.data, n, body.absent, body.converters, list_rows=True)
        return EventBatch(
            n,
            columns=body,
            keys=keys,
            times=times,
            time_values=time_values,
            time_style=style,
            ids=event_ids,
        )

    def _kept_rows(self, columns):
        """A mask of the rows to keep, or None to keep them all."""
        key = self.key
        if key is None or columns.n == 0:
            return None
        if isinstance(key, list):
            skip = None
            for name in key:
                if self.list_key_skips_nan:
                    part = columns.converters.get(name, PLAIN).missing_mask(columns[name])
                else:
                    part = _none_mask(columns, name)
                skip = part if skip is None else skip | part
        else:
            skip = _none_mask(columns, key)
        if not skip.any():
            return None
        return ~skip

    def _keys(self, columns):
        key = self.key
        if key is None:
            return None
        if isinstance(key, list):

            def make():
                parts = [columns.column_list(name) for name in key]
                return [list(values) for values in zip(*parts)]

        else:

            def make():
                return columns.column_list(key)

            return LazyKeys(columns.n, make, lambda: _text_column(columns, key))

        return LazyKeys(columns.n, make)

    def _times(self, columns, where):
        n = columns.n
        if self.time is None:
            now = datetime.now(UTC)
            return np.full(n, to_ns(now), dtype=np.int64), None, self.now_style
        return column_times(columns, self.time, where, self.time_unit)


class MissingTime(ValueError):
    """A row whose time field holds no time (None, NaN, NaT, NA); `index` is its position."""

    def __init__(self, message, index):
        super().__init__(message)
        self.index = index


def check_time_unit(step, time_unit):
    """The time_unit parameter of a source: None or one of TIME_UNITS."""
    if time_unit is not None and time_unit not in TIME_UNITS:
        units = ", ".join(map(repr, TIME_UNITS))
        raise ValueError(f"{step}: time_unit must be one of {units}, got {time_unit!r}")
    return time_unit


def _text_column(columns, name):
    """The arrow string array a column of text was read from (its values are the row values:
    the keys), or None for any other column."""
    data = columns.data
    if isinstance(data, FrameData):
        return data.text(name)
    if not isinstance(data, ArrowColumnData) or name in data.overridden:
        return None
    column = data.arrow_column(name)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    return None


def _none_mask(columns, name):
    if isinstance(columns.data, ArrowColumnData | FrameData):
        mask = columns.data.none_mask(name)
        if mask is not None:
            return mask
    return columns.converters.get(name, PLAIN).none_mask(columns[name])


def column_times(columns, name, where, unit="s"):
    """(int64 ns or None, time objects or None, TimeStyle or None) for the events' times taken
    from body field `name`, integers being epoch times in `unit`. MissingTime or TimeOutOfRange
    (with the row's index) for a row without a time the windows can hold."""
    values = columns[name]
    kind = columns.converters.get(name, PLAIN)
    missing = kind.missing_mask(values)
    if missing.any():
        message = "has no value: an event needs a time to be placed in its windows"
        raise MissingTime(message, int(np.argmax(missing)))
    if isinstance(kind, TimestampKind):
        return values.view(np.int64), None, kind.style
    if isinstance(kind, DatetimeKind):
        return datetime64_ns(values), None, kind.style
    if kind is PLAIN and values.dtype.kind in "iu":
        try:
            return epoch_ns(values, unit), None, NAIVE
        except TimeOutOfRange as ex:
            if unit != "s":
                raise
            hint = f"{ex}; if the field holds epoch ms, us or ns, give its unit (time_unit)"
            raise TimeOutOfRange(hint, ex.index) from None
    if kind is PLAIN and values.dtype.kind == "O":
        parsed = _iso_column(values)
        if parsed is not None:
            return column_times(
                Columns({name: parsed[0]}, len(values), converters={name: parsed[1]}), name, where
            )
    time_values = [_event_time(v, name, where) for v in kind(values)]
    return to_ns_array(time_values), time_values, None


def _iso_column(values):
    """(datetime64[us] instants, DatetimeKind) for a column of ISO-8601 strings (None allowed)
    whose values share one zone, parsed as a whole; None for any other column."""
    try:
        strings = pa.array(values, type=pa.string(), from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    try:
        parsed = parse_times(strings)
    except TimeParseError:
        return None
    if parsed.array is None:
        return None
    plan = parsed.plan()
    return plan.to_numpy(parsed.array), plan.kind


def _event_time(value, name, where):
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"time_field {name!r} of {where}: {value!r} is not an ISO-8601 time") from None
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return datetime.fromtimestamp(int(value), UTC).replace(tzinfo=None)
    raise TypeError(
        f"time_field {name!r} of {where}: an event time must be a datetime, an ISO-8601 string "
        f"or epoch seconds (int), got {type(value).__name__} {value!r}"
    )


class LazyKeys(Sequence):
    """The keys of a batch's events, made from the key column(s) the first time they are looked
    at: a flow that never reads keys (a file copied to a file) never builds them. `arrow()` gives
    them as an arrow string array, without building them, when they are the values of one text
    column (else None)."""

    __slots__ = ("_n", "_make", "_values", "_arrow")

    def __init__(self, n, make, arrow=None):
        self._n = n
        self._make = make
        self._values = None
        self._arrow = arrow

    def arrow(self):
        return None if self._arrow is None else self._arrow()

    def _list(self):
        if self._values is None:
            self._values = self._make()
            self._make = None
        return self._values

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        return self._list()[i]

    def __iter__(self):
        return iter(self._list())

    def __eq__(self, other):
        if isinstance(other, LazyKeys):
            other = other._list()
        return self._list() == other

    __hash__ = None

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self._n, dtype=object)
        out[:] = self._list() if self._n else []
        return out if dtype is None else out.astype(dtype)

    def __repr__(self):
        return repr(self._list())
