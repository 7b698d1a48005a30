"""How `V3ioDriver` keeps an aggregator's window state in a key's V3IO item: in storey 1.0.6's
format, so that either library continues what the other aggregated, and in ours beside it, so that
ours continues exactly.

storey 1.0.6's format, for an aggregator named N with period p and largest window M:

- `aggr_N_<r>_a`, `aggr_N_<r>_b`: for each raw aggregate r the aggregator needs (count, sum, sqr,
  min, max, first, last; avg needs count and sum, stddev/stdvar count, sum and sqr), a double
  array of the period buckets of one stretch of time M long, aligned to multiples of M since the
  epoch: element i is the bucket starting i periods after the stretch does (the array is as long
  as the windows' least common multiple, in periods; elements past M are never used). An empty
  bucket holds the aggregate's neutral value (0, +inf for min, -inf for max, NaN for first and
  last);
- `_N_a`, `_N_b`: the start of the stretch each array holds (a timestamp); stretches alternate
  between the two (a: even multiples of M, b: odd ones), so the item holds the key's latest two;
- the table's `.schema` object: per aggregator, `period_millis`, `aggregates` (the raw ones),
  `window_type` and `max_window_millis`.

Ours: `_N_state`, a blob holding the key's state blocks as the table packs them (see
`storey.table.aggregation_state`) and a checksum of the arrays and stretch starts written with
them. A key whose arrays another writer (storey 1.0.6) changed since is read from the arrays.

Reading the arrays, ours rebuilds the ring of buckets the windows need (the latest M of them up to
the latest bucket holding a value), the windows' running aggregates from it (added up newest
bucket first), and header words as well as the arrays tell them: the key's first bucket is the
oldest stored; a bucket's first and last values come first and last within it (the arrays keep no
times); where a window's range of fixed windows starts, from the oldest bucket holding a value in
that range. Buckets older than the stored stretches are gone (storey 1.0.6 keeps no more).
"""

import datetime
import math
import struct
import zlib

import numpy as np

from ..kernels import interpreted
from ..kernels import layout as B

__all__ = ["ItemFormat", "RAW_AGGREGATES", "raw_aggregates", "reference_schema_entry"]

# the raw aggregates storey 1.0.6 keeps for each aggregation
RAW_AGGREGATES = {
    "count": ("count",),
    "sum": ("sum",),
    "sqr": ("sqr",),
    "min": ("min",),
    "max": ("max",),
    "first": ("first",),
    "last": ("last",),
    "avg": ("count", "sum"),
    "stddev": ("count", "sum", "sqr"),
    "stdvar": ("count", "sum", "sqr"),
}
_NEUTRAL = {
    "count": 0.0,
    "sum": 0.0,
    "sqr": 0.0,
    "min": math.inf,
    "max": -math.inf,
    "first": math.nan,
    "last": math.nan,
}
_STAT = {
    "count": B.K_CNT,
    "sum": B.K_SUM,
    "sqr": B.K_SQR,
    "min": B.K_MIN,
    "max": B.K_MAX,
    "first": B.K_FVAL,
    "last": B.K_LVAL,
}
# the platform's array encoding: magic, version, byte length, element type (261: double)
_ARRAY_MAGIC = struct.pack("<II", 11223344, 1)
_DOUBLE = 261
_STATE_VERSION = 1
_STATE_HEADER = struct.Struct("<BIB")
_PARITIES = ("a", "b")


def raw_aggregates(aggregations):
    """The raw aggregates storey 1.0.6 keeps for `aggregations`, sorted."""
    return sorted({raw for name in aggregations for raw in RAW_AGGREGATES[name]})


def _array_header(size):
    return _ARRAY_MAGIC + struct.pack("<II", 8 * size, _DOUBLE)


def _array_bytes(values):
    """A double array in the platform's encoding (what the v3io client makes of a list of floats)."""
    values = np.ascontiguousarray(values, dtype="<f8")
    return _array_header(len(values)) + values.tobytes()


def _seconds(value):
    """A stretch start read from an item (a datetime) as whole seconds since the epoch."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return round(value.timestamp())
    return None


def reference_schema_entry(layout):
    """What storey 1.0.6 writes of an aggregator in a table's .schema object."""
    aggregator = layout.aggregator
    period_millis = layout.period / 1e6
    if period_millis.is_integer() and not layout.fixed and aggregator.windows.period is not None:
        period_millis = int(period_millis)
    return {
        "period_millis": period_millis,
        "aggregates": raw_aggregates(aggregator.aggregations),
        "window_type": "FixedWindow" if layout.fixed else "SlidingWindow",
        "max_window_millis": aggregator.windows.max_window_millis,
    }


class ItemFormat:
    """The item attributes of one aggregator (of `group`, at `index` in it) in both formats."""

    def __init__(self, group, index):
        layout = group.layouts[index]
        self.group = group
        self.index = index
        self.layout = layout
        aggregator = layout.aggregator
        self.name = aggregator.name
        self.raws = raw_aggregates(aggregator.aggregations)
        self.period = layout.period
        windows = aggregator.windows
        self.stretch_ns = windows.max_window_ns
        # buckets in a stretch, and the arrays' length (the windows' least common multiple)
        self.chunk = self.stretch_ns // self.period
        common = 1
        for ns, _ in windows.windows_ns:
            common = math.lcm(common, ns // self.period)
        self.size = common
        self.state_attribute = f"_{self.name}_state"
        self.time_attributes = {parity: f"_{self.name}_{parity}" for parity in _PARITIES}
        self.array_attributes = {
            parity: [f"aggr_{self.name}_{raw}_{parity}" for raw in self.raws] for parity in _PARITIES
        }
        self.head = layout.ring_start - layout.offset
        record = layout.record
        self.place = {
            k: record[B.R_RINGS + k] - layout.ring_start
            for k in range(B.N_RINGS)
            if record[B.R_RINGS + k] >= 0
        }
        missing = [raw for raw in self.raws if _STAT[raw] not in self.place]
        if missing:  # pragma: no cover - the layout keeps what the aggregations need
            raise ValueError(f"aggregator {self.name!r} keeps no {missing}")
        self._iwidth = layout.iend - layout.ioffset

    # ---- writing
    def attributes(self, floats, ints):
        """Per key (rows of `floats`, `ints`: the keys' blocks, unpacked), the attributes to set
        on its item: both formats. Keys without state get an empty dict."""
        layout = self.layout
        n = len(floats)
        latest = ints[:, B.H_B]
        has = latest != B.NO_STATE
        out = [{} for _ in range(n)]
        if not has.any():
            return out
        packed_floats, packed_ints = layout.pack(floats, ints)
        rows = np.flatnonzero(has)
        latest = latest[rows]
        filled = layout._filled(ints[rows])
        ring = layout.ring
        stride = layout.stride
        stretch = (latest * self.period) // self.stretch_ns
        offsets = np.arange(self.chunk)
        pieces = [[] for _ in rows]
        masks = np.zeros(len(rows), dtype=np.int64)
        for back in (0, 1):
            number = stretch - back
            buckets = (number * self.chunk)[:, None] + offsets
            in_ring = (buckets <= latest[:, None]) & (buckets > (latest - ring)[:, None])
            slots = buckets % ring
            present = in_ring & np.take_along_axis(filled, slots, axis=1)
            written = present.any(axis=1) if back else np.ones(len(rows), dtype=bool)
            if not written.any():
                continue
            base = self.head + slots * stride
            local = np.arange(len(rows))[:, None]
            source = floats[rows]
            # each raw aggregate's arrays of every key, as one block of bytes a key's slice of
            # which (after the array header) is its array
            blocks = []
            for raw in self.raws:
                valid = present
                if raw == "first":
                    valid = present & (source[local, base + self.place[B.K_FOFF]] < math.inf)
                elif raw == "last":
                    valid = present & (source[local, base + self.place[B.K_LOFF]] > -math.inf)
                full = np.full((len(rows), self.size), _NEUTRAL[raw], dtype="<f8")
                full[:, : self.chunk] = np.where(
                    valid, source[local, base + self.place[_STAT[raw]]], _NEUTRAL[raw]
                )
                blocks.append(full.tobytes())
            width = 8 * self.size
            header = _array_header(self.size)
            for i in np.flatnonzero(written).tolist():
                parity = _PARITIES[int(number[i]) % 2]
                start = int(number[i]) * self.stretch_ns
                attributes = out[rows[i]]
                attributes[self.time_attributes[parity]] = datetime.datetime.fromtimestamp(
                    start / 1e9, datetime.UTC
                )
                piece = [struct.pack("<q", start // 10**9)]
                for name, block in zip(self.array_attributes[parity], blocks, strict=True):
                    data = header + block[i * width : (i + 1) * width]
                    attributes[name] = data
                    piece.append(data)
                pieces[i].append((parity, b"".join(piece)))
                masks[i] |= 1 << _PARITIES.index(parity)
        for i, row in enumerate(rows.tolist()):
            checksum = 0
            for _, piece in sorted(pieces[i]):
                checksum = zlib.crc32(piece, checksum)
            header = _STATE_HEADER.pack(_STATE_VERSION, checksum, int(masks[i]))
            out[row][self.state_attribute] = header + packed_ints[row] + packed_floats[row]
        return out

    # ---- reading
    def stored_state(self, item):
        """The key's state (packed floats, ints) from its item, None when it holds none: from
        ours when the arrays are as it wrote them, else from the arrays (see `rebuild`)."""
        blob = item.get(self.state_attribute)
        if isinstance(blob, bytes) and len(blob) >= _STATE_HEADER.size + 8 * self._iwidth:
            version, checksum, mask = _STATE_HEADER.unpack_from(blob)
            if version == _STATE_VERSION and checksum == self._checksum(item, mask):
                start = _STATE_HEADER.size
                return blob[start + 8 * self._iwidth :], blob[start : start + 8 * self._iwidth]
        return self.rebuild(item)

    def _checksum(self, item, mask):
        checksum = 0
        for bit, parity in enumerate(_PARITIES):
            if not mask >> bit & 1:
                continue
            secs = _seconds(item.get(self.time_attributes[parity]))
            if secs is None:
                return None
            piece = [struct.pack("<q", secs)]
            for name in self.array_attributes[parity]:
                values = item.get(name)
                if not isinstance(values, list) or len(values) != self.size:
                    return None
                piece.append(_array_bytes(values))
            checksum = zlib.crc32(b"".join(piece), checksum)
        return checksum

    def stretches(self, item):
        """{stretch start (ns): {raw aggregate: array}} of the item's storey 1.0.6 arrays."""
        found = {}
        for parity in _PARITIES:
            secs = _seconds(item.get(self.time_attributes[parity]))
            arrays = {
                raw: item.get(name)
                for raw, name in zip(self.raws, self.array_attributes[parity], strict=True)
            }
            present = {raw: values for raw, values in arrays.items() if isinstance(values, list)}
            if secs is None or not present:
                continue
            if len(present) != len(arrays):
                lacking = sorted(set(arrays) - set(present))
                raise ValueError(
                    f"aggregator {self.name!r}: the item holds no {', '.join(lacking)} of the stretch "
                    f"starting at {secs} (storey 1.0.6 aggregated other aggregations into it)"
                )
            found[secs * 10**9] = present
        return found

    def rebuild(self, item):
        """The key's state (packed floats, ints) rebuilt from storey 1.0.6's arrays (see the
        module's docstring), None when they hold no value."""
        buckets = {}
        for start, arrays in self.stretches(item).items():
            first_bucket = start // self.period
            for i in range(min(self.chunk, *(len(values) for values in arrays.values()))):
                stats = {raw: float(values[i]) for raw, values in arrays.items()}
                if _holds_values(stats):
                    buckets[first_bucket + i] = stats
        if not buckets:
            return None
        layout = self.layout
        group = self.group
        ring = layout.ring
        latest = max(buckets)
        oldest = min(buckets)
        state = np.zeros((1, group.width))
        istate = np.zeros((1, group.iwidth), dtype=np.int64)
        io = layout.ioffset
        istate[0, io + B.H_B] = latest
        istate[0, io + B.H_OFF] = 0
        istate[0, io + B.H_FIRST] = oldest
        istate[0, io + B.H_J] = latest % ring
        istate[0, io + B.H_READ] = B.NO_STATE
        istate[0, io + B.H_BORN] = oldest
        istate[0, io + B.H_MOVED] = latest
        ring_start = layout.ring_start
        for bucket, stats in buckets.items():
            if bucket <= latest - ring:
                continue
            slot = bucket % ring
            istate[0, io + B.HEADER + slot // 32] |= np.int64(1) << (slot % 32)
            s = ring_start + slot * layout.stride
            state[0, s + self.place[B.K_CNT]] = stats.get("count", 1.0)
            for raw in ("sum", "sqr", "min", "max"):
                if _STAT[raw] in self.place:
                    state[0, s + self.place[_STAT[raw]]] = stats.get(raw, _NEUTRAL[raw])
            if B.K_FOFF in self.place:
                value = stats.get("first", math.nan)
                state[0, s + self.place[B.K_FOFF]] = math.inf if math.isnan(value) else 0.0
                state[0, s + self.place[B.K_FVAL]] = value
            if B.K_LOFF in self.place:
                value = stats.get("last", math.nan)
                state[0, s + self.place[B.K_LOFF]] = -math.inf if math.isnan(value) else 0.0
                state[0, s + self.place[B.K_LVAL]] = value
        self._windows(state, istate, buckets, latest)
        block = state[:, layout.offset : layout.end]
        iblock = istate[:, layout.ioffset : layout.iend]
        packed_floats, packed_ints = layout.pack(block, iblock)
        return packed_floats[0], packed_ints[0]

    def _windows(self, state, istate, buckets, latest):
        """The windows' running aggregates at the latest bucket, as the kernels keep them."""
        sliding, fixed = interpreted.load()
        layout = self.layout
        cfg = self.group.cfg
        rec = int(cfg[1 + self.index])
        woff = layout.window_offset
        if not layout.fixed:
            sliding.windows_newest_first(state, istate, 0, cfg, rec, latest, latest % layout.ring)
            for w in range(len(layout.windows)):
                state[0, woff + w * B.W_SIZE + B.W_LO] = math.nan  # the reference's first: none yet
                state[0, woff + w * B.W_SIZE + B.W_END] = 0.0
            return
        # a fixed window's range starts at the window boundary before the latest bucket (mode 0),
        # or at the latest boundary of any window (mode 1), as seen by its oldest value there
        sizes = [cfg[rec + B.R_WIN + w] for w in range(len(layout.windows))]
        since = max((latest // size) * size for size in sizes)
        opened = min((b for b in buckets if since <= b <= latest), default=latest)
        for w in range(len(layout.windows)):
            t = (opened if cfg[rec + B.R_MODE] == 1 else latest) * self.period
            fixed.fixed_new_range(state, istate, 0, cfg, rec, t, latest, w)


def _holds_values(stats):
    """Whether a bucket's stored raw aggregates hold a value (an empty bucket holds neutral ones)."""
    if stats.get("count", 0.0) != 0.0:
        return True
    for raw, value in stats.items():
        neutral = _NEUTRAL[raw]
        if not (value == neutral or (math.isnan(value) and math.isnan(neutral))):
            return True
    return False
