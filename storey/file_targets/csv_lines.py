"""CSV lines as the reference writes them: Python's csv conventions with '\\n' line ends.

A cell is '' for None and `str(value)` otherwise (floats as repr, datetimes as `str()`); it is
quoted when it holds ',', '"' or a line feed, with '"' doubled; a line with a single empty cell
is written '""'. Column bodies are formatted column by column with arrow compute kernels; row
bodies cell by cell.
"""

import csv
import io
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .values import column_sample, source_arrow_column, time_info, time_ns

_QUOTE_CHARS = frozenset(',"\n')


# ---- row bodies
def cell_text(value):
    text = value if type(value) is str else ("" if value is None else str(value))
    if '"' in text:
        return '"' + text.replace('"', '""') + '"'
    if "," in text or "\n" in text:
        return '"' + text + '"'
    return text


def line_text(values):
    """One CSV line (with its '\\n') of a list of cell values."""
    if len(values) == 1 and (values[0] is None or values[0] == ""):
        return '""\n'
    return ",".join([cell_text(v) for v in values]) + "\n"


def text_of_rows(rows):
    """CSV text of many lines (lists of cell values) at once, through Python's csv writer."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


class Lines:
    """CSV lines of some events: a list of strings or an arrow string array (one per event), or
    the text of all of them (`n` lines; cannot be split)."""

    __slots__ = ("lines", "n")

    def __init__(self, lines, n=None):
        self.lines = lines
        self.n = len(lines) if n is None else n

    def __len__(self):
        return self.n

    def take(self, positions):
        if isinstance(self.lines, list):
            lines = self.lines
            return Lines([lines[i] for i in positions.tolist()])
        return Lines(self.lines.take(pa.array(positions)))

    def payload(self):
        """The lines as UTF-8 bytes (a bytes-like object)."""
        lines = self.lines
        if isinstance(lines, str):
            return lines.encode("utf-8")
        if isinstance(lines, list):
            return "".join(lines).encode("utf-8")
        if len(lines) == 0:
            return b""
        lines = lines.cast(pa.large_string()) if lines.type != pa.large_string() else lines
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[
            lines.offset : lines.offset + len(lines) + 1
        ]
        start, stop = int(offsets[0]), int(offsets[-1])
        return memoryview(lines.buffers()[2])[start:stop]


# ---- column bodies
def format_floats(values):
    """Floats as Python's repr() writes them, computed with arrow (Python for extreme values)."""
    values = np.asarray(values, dtype=np.float64)
    text = pc.cast(pa.array(values), pa.string())
    finite = np.isfinite(values)
    magnitude = np.abs(values)
    with np.errstate(invalid="ignore"):
        odd = finite & ((magnitude >= 1e9) | ((magnitude < 1e-4) & (values != 0)))
        integral = finite & ~odd & (values == np.floor(values))
    if integral.any():
        text = pc.if_else(pa.array(integral), pc.binary_join_element_wise(text, "0", "."), text)
    if odd.any():
        where = np.flatnonzero(odd)
        text = pc.replace_with_mask(text, pa.array(odd), pa.array([repr(v) for v in values[where].tolist()]))
    return text


def format_times(ns, tz, pandas_style, offsets_ns=None):
    """Times as `str()` writes them: 'YYYY-MM-DD HH:MM:SS[.fraction][+HH:MM]'; microseconds for
    datetimes, nanoseconds when set for `pandas.Timestamp`s; NaT as 'NaT'."""
    ns = np.asarray(ns, dtype=np.int64)
    nat = ns == np.iinfo(np.int64).min
    if offsets_ns is None and tz is not None:
        index = (
            pd.DatetimeIndex(np.where(nat, 0, ns).astype("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
        )
        offsets_ns = index.tz_localize(None).asi8 - index.asi8
    wall = ns if offsets_ns is None else ns + offsets_ns
    wall = np.where(nat, 0, wall)
    seconds = np.floor_divide(wall, 1_000_000_000)
    fraction = wall - seconds * 1_000_000_000
    base = pc.cast(pa.array(seconds, pa.timestamp("s")), pa.string())  # "YYYY-MM-DD HH:MM:SS"
    micros, nanos = np.divmod(fraction, 1000)
    if pandas_style and (nanos != 0).any():
        frac = pc.binary_join_element_wise(".", _padded(fraction, 9), "")
        frac = pc.if_else(
            pa.array(nanos != 0), frac, pc.binary_join_element_wise(".", _padded(micros, 6), "")
        )
        frac = pc.if_else(pa.array(fraction == 0), "", frac)
    elif (micros != 0).any():
        frac = pc.if_else(pa.array(micros != 0), pc.binary_join_element_wise(".", _padded(micros, 6), ""), "")
    else:
        frac = pa.scalar("")
    if offsets_ns is None:
        suffix = pa.scalar("")
    else:
        distinct, inverse = np.unique(np.asarray(offsets_ns) // 1_000_000_000, return_inverse=True)
        suffix = pa.array([_offset_text(int(s)) for s in distinct]).take(pa.array(inverse.reshape(-1)))
    text = pc.binary_join_element_wise(base, frac, suffix, "")
    if nat.any():
        text = pc.if_else(pa.array(nat), "NaT", text)
    return text


def _padded(values, width):
    return pc.utf8_lpad(pc.cast(pa.array(values), pa.string()), width, "0")


def _offset_text(seconds):
    sign = "+" if seconds >= 0 else "-"
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def time_texts(batch):
    """The event times as `str()` writes them."""
    tz, pandas_style = time_info(batch)
    values = batch._time_values
    if values is not None:
        kind, zone = type(values[0]), values[0].tzinfo
        if not all(type(v) is kind and v.tzinfo is zone for v in values):
            return pa.array([str(t) for t in values], pa.string())
    return format_times(time_ns(batch), tz, pandas_style)


def value_texts(values):
    """Cell texts (unquoted) of one column of row values, as `str()` writes them; computed with
    arrow when all values are of one plain type (str, int, float, bool, datetimes of one zone)."""
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
    return _python_texts(values)


def _python_texts(values):
    return pa.array(["" if v is None else (v if type(v) is str else str(v)) for v in values], pa.string())


def column_texts(cols, name):
    """Cell texts (unquoted) of a body field held as a NumPy column."""
    if name not in cols:
        return pa.nulls(cols.n, pa.string())
    as_read = source_arrow_column(cols, name)
    if as_read is not None and (pa.types.is_string(as_read.type) or pa.types.is_large_string(as_read.type)):
        return as_read.cast(pa.string())  # strings as read: no Python objects
    arr = cols.data[name]
    absent = cols.absent.get(name)
    if absent is not None and not absent.any():
        absent = None
    kind = arr.dtype.kind
    sample = column_sample(cols, name) if name in cols.converters else None
    plain = name not in cols.converters or _plain_sample(sample, kind)
    if not plain:
        text = _python_texts(cols.column_list(name))
    elif kind == "f":
        text = format_floats(arr)
    elif kind in "iu":
        text = pc.cast(pa.array(arr), pa.string())
    elif kind == "b":
        text = pc.if_else(pa.array(arr), "True", "False")
    elif kind == "M":
        tzinfo = getattr(sample, "tzinfo", None)
        pandas_style = sample is None or type(sample).__name__ == "Timestamp"
        ns = arr.astype("datetime64[ns]").view(np.int64)
        text = format_times(ns, tzinfo, pandas_style)
    elif kind == "U":
        text = pa.array(arr, pa.string())
    else:
        try:
            text = pa.array(arr, from_pandas=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            text = None
        if text is None or not (pa.types.is_string(text.type) or pa.types.is_null(text.type)):
            text = _python_texts(arr.tolist() if kind == "O" else cols.column_list(name))
        else:
            text = text.cast(pa.string())
    if absent is not None:
        text = pc.if_else(pa.array(absent), pa.scalar(None, pa.string()), text)
    return text


def _plain_sample(sample, kind):
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


def quoted(text):
    """Cell texts quoted where needed; nulls become empty cells."""
    text = pc.fill_null(text, "")
    needs = pc.match_substring_regex(text, '[,"\n]')
    if not pc.any(needs).as_py():
        return text
    escaped = pc.binary_join_element_wise("", pc.replace_substring(text, '"', '""'), "", '"')
    return pc.if_else(needs, escaped, text)


def join_lines(cells, n):
    """CSV lines (with '\\n') from quoted cell texts, one array per column."""
    if not cells:
        return pa.array(["\n"] * n, pa.string())
    if len(cells) == 1:
        only = pc.if_else(pc.equal(cells[0], ""), '""', cells[0])
        return pc.binary_join_element_wise(only, "", "\n")
    return pc.binary_join_element_wise(pc.binary_join_element_wise(*cells, ","), "", "\n")
