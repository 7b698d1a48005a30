"""Time windows of aggregations: sliding windows (divided into period buckets) and fixed windows
(aligned to multiples of their length since the epoch, UTC).

Durations are strings `[0-9]+[smhd]` (seconds, minutes, hours, days). Internally every duration
is an int number of nanoseconds; the `*_millis` attributes mirror them in milliseconds.
"""

import enum
import math
import re

__all__ = [
    "FixedWindow",
    "FixedWindowType",
    "FixedWindows",
    "LateDataHandling",
    "SlidingWindow",
    "SlidingWindows",
    "WindowBase",
    "WindowsBase",
    "parse_duration",
]

_UNIT_NS = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}
_DURATION = re.compile(r"([0-9]+)([smhd])")


class FixedWindowType(enum.Enum):
    """Which fixed window a query reads: the one that holds the query time, or the one before."""

    CurrentOpenWindow = 1
    LastClosedWindow = 2


class LateDataHandling(enum.Enum):
    """What to do with events that arrive after later ones."""

    Nothing = 1
    Sort_before_emit = 2


def parse_duration(text, what="window"):
    """Nanoseconds of a duration string `[0-9]+[smhd]`; ValueError naming the string otherwise."""
    if not isinstance(text, str):
        raise TypeError(
            f"{what} must be a string in the format [0-9]+[smhd], got {type(text).__name__}: {text!r}"
        )
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"Failed to parse {what} {text!r}: expected the format [0-9]+[smhd] (e.g. '10m', '1h')"
        )
    ns = int(match.group(1)) * _UNIT_NS[match.group(2)]
    if ns == 0:
        raise ValueError(f"{what} {text!r} must be longer than zero")
    return ns


def unit_ns(text):
    """Nanoseconds of the unit of a duration string ('15m' -> one minute)."""
    return _UNIT_NS[text[-1]]


def _window_list(cls_name, windows):
    if isinstance(windows, str) or not isinstance(windows, list | tuple):
        raise TypeError(
            f"{cls_name}: windows must be a list of window strings such as ['1h', '6h'], "
            f"got {type(windows).__name__}: {windows!r}"
        )
    if not windows:
        raise ValueError(f"{cls_name}: Windows list can not be empty")
    parsed = [(parse_duration(w), w) for w in windows]
    parsed.sort(key=lambda pair: pair[0])
    return parsed


class WindowBase:
    """One time window of `window` (and its period)."""

    def __init__(self, window, period, window_str):
        self.window_ns = window
        self.period_ns = period
        self.window_str = window_str
        self.window_millis = window // 1_000_000
        self.period_millis = period / 1_000_000

    def get_total_number_of_buckets(self):
        return int(self.window_ns // self.period_ns)


class SlidingWindow(WindowBase):
    """Time window representing sliding time interval divided to periods.

    :param window: Time window in the format [0-9]+[smhd]
    :param period: Period of the buckets the window is made of, in the format [0-9]+[smhd]
    """

    def __init__(self, window, period):
        window_ns = parse_duration(window)
        period_ns = parse_duration(period, "period")
        if window_ns % period_ns:
            raise ValueError(f"SlidingWindow: period {period!r} must be a divider of the window {window!r}")
        super().__init__(window_ns, period_ns, window)


class FixedWindow(WindowBase):
    """Time window representing a fixed time interval, aligned to multiples of its length since
    the epoch (UTC).

    :param window: Time window in the format [0-9]+[smhd]
    """

    def __init__(self, window):
        window_ns = parse_duration(window)
        super().__init__(window_ns, window_ns // 2, window)


class WindowsBase:
    """A list of windows aggregated together, over buckets of one period."""

    def __init__(self, period, windows):
        # windows: [(ns, str)] sorted by length
        self.windows_ns = windows
        self.period_ns = period
        self.windows = [(ns // 1_000_000, text) for ns, text in windows]
        self.max_window_ns = windows[-1][0]
        self.smallest_window_ns = windows[0][0]
        self.period_millis = period / 1_000_000
        self.max_window_millis = self.max_window_ns // 1_000_000
        self.smallest_window_millis = self.smallest_window_ns // 1_000_000
        self.window_millis = self.max_window_millis
        self.total_number_of_buckets = int(self.max_window_ns // period)

    def __repr__(self):
        return f"{type(self).__name__}({[text for _, text in self.windows_ns]!r})"

    def __eq__(self, other):
        return (
            type(self) is type(other)
            and self.windows_ns == other.windows_ns
            and self.period_ns == other.period_ns
        )

    def __hash__(self):
        return hash((type(self), tuple(self.windows_ns), self.period_ns))


class SlidingWindows(WindowsBase):
    """List of time windows representing sliding time intervals. For example: 1h will represent 1h
    windows starting from the current time.

    Each window is made of period buckets aligned to multiples of the period since the epoch: an
    event's window of n periods covers its own bucket and the n - 1 before it.

    :param windows: List of time windows in the format [0-9]+[smhd]
    :param period: Period in the format [0-9]+[smhd]; it must divide every window. Defaults to
        half the unit of the smallest window (30m for '1h', 30s for '45m').
    """

    def __init__(self, windows, period=None):
        parsed = _window_list("SlidingWindows", windows)
        if period is None:
            period_ns = unit_ns(parsed[0][1]) // 2
        else:
            period_ns = parse_duration(period, "period")
        for ns, text in parsed:
            if ns % period_ns:
                raise ValueError(
                    f"SlidingWindows: Period must be a divisor of every window, but period {period!r} "
                    f"does not divide {text!r}"
                )
        super().__init__(period_ns, parsed)
        self.period = period


class FixedWindows(WindowsBase):
    """List of time windows representing fixed time intervals. For example: 1h will represent 1h
    windows starting every round hour.

    :param windows: List of time windows in the format [0-9]+[smhd]
    """

    def __init__(self, windows):
        parsed = _window_list("FixedWindows", windows)
        smallest_ns, smallest = parsed[0]
        super().__init__(smallest_ns // 2, parsed)
        self.smallest_window_unit_ns = unit_ns(smallest)
        self.smallest_window_unit_millis = self.smallest_window_unit_ns // 1_000_000

    def bucket_ns(self):
        """The bucket length that every window boundary (and the period) falls on: half the
        windows' greatest common divisor, the reference's buckets (['10m', '15m']: 2.5 minutes)."""
        g = 0
        for ns, _ in self.windows_ns:
            g = math.gcd(g, ns)
        return g // 2

    def cycle_ns(self):
        """The windows' least common multiple: every window starts again at its multiples since the
        epoch (['2h', '3h']: 6 hours). The reference keeps one cycle of buckets per key."""
        return math.lcm(*(ns for ns, _ in self.windows_ns))
