"""The window-aggregation state of a Table: dense NumPy arrays, one row per key.

`AggregationState` (held in `table._aggregation_state`) maps keys to rows (slots) and holds the
aggregators registered on the table, in groups: the aggregators one step computes with one kind of
window share a group, whose `state` array has one row per key and whose `cfg` array describes them
to the kernels (layout in `storey.kernels.buckets`). Arrays grow geometrically with the keys.

Each aggregator's state of a key is a block of its group's rows (floats in `state`, int64s in
`istate`) that holds no position of its own: the block is what a storage keeps, with the
aggregator's description (`describe`), and it is put back in any group's rows.
"""

import numpy as np

from ..core.lazy import LazyModule
from ..dtypes.aggregators import FieldAggregator
from ..dtypes.windows import FixedWindows, SlidingWindows, parse_duration
from ..kernels import layout as B
from ..kernels.registry import AGGREGATIONS, FIRST, LAST, MAX, MIN, SQR, STAT_NAMES, SUM, stats_of
from .keys import table_key
from .row_arrays import GrowingRows

_INT64 = np.dtype(np.int64)

# used only on keys a source hands as Arrow arrays, when pyarrow is loaded already
pa = LazyModule("pyarrow")
pc = LazyModule("pyarrow.compute")
arrow_arrays = LazyModule("storey.core.arrow_arrays")

__all__ = [
    "AggregationState",
    "Group",
    "aggregation_state",
    "REFERENCE_FORM",
    "aggregator_for_features",
    "aggregator_from_description",
    "describe",
    "difference",
]

_NON_INVERTIBLE = MIN | MAX | FIRST | LAST
# tables with fewer slots keep their arrays when keys are released
_COMPACT_FROM = 4096
# the version of the blocks' layout: state stored by another version is refused, not misread
LAYOUT_VERSION = 1


def _windows_of(aggregator):
    """(length ns, text) of the aggregator's distinct windows, shortest first."""
    seen = {}
    for ns, text in aggregator.windows.windows_ns:
        seen.setdefault(text, ns)
    return [(ns, text) for text, ns in seen.items()]


class Layout:
    """Where one aggregator lives: its record in its group's cfg, its block in the state rows and
    its features in the kernels' output."""

    def __init__(self, aggregator, offset, ioffset, out_row, value_row):
        self.aggregator = aggregator
        windows = aggregator.windows
        self.fixed = isinstance(windows, FixedWindows)
        self.stats = stats_of(aggregator.aggregations)
        self.windows = _windows_of(aggregator)
        if self.fixed:
            period = windows.bucket_ns()
            # a cycle of the windows, and the largest window before it (see storey.kernels.fixed)
            ring = (windows.cycle_ns() + windows.max_window_ns) // period
            mode = 1 if self.stats & _NON_INVERTIBLE else 0
        else:
            period = windows.period_ns
            ring = windows.max_window_ns // period
            mode = 0
        self.period = period
        self.ring = ring
        kept = [B.K_CNT]
        if self.stats & SUM:
            kept.append(B.K_SUM)
        if self.stats & SQR:
            kept.append(B.K_SQR)
        if self.stats & MIN:
            kept.append(B.K_MIN)
        if self.stats & MAX:
            kept.append(B.K_MAX)
        if self.stats & FIRST:
            kept += [B.K_FOFF, B.K_FVAL]
        if self.stats & LAST:
            kept += [B.K_LOFF, B.K_LVAL]
        # floats: the window blocks, then the ring, bucket after bucket, each bucket's statistics
        # side by side; int64s: the header, then a bitmap of the filled ring slots
        self.window_offset = offset
        ring_start = self.window_offset + len(self.windows) * B.W_SIZE
        rings = [-1] * B.N_RINGS
        for place, k in enumerate(kept):
            rings[k] = ring_start + place
        self.stride = len(kept)
        self.ring_start = ring_start
        self.end = ring_start + ring * self.stride
        self.offset = offset
        self.ioffset = ioffset
        self.iend = ioffset + B.HEADER + (ring + 31) // 32
        self.out_row = out_row
        self.value_row = value_row
        max_value = aggregator.max_value
        self.max_value = float(max_value) if max_value is not None else np.inf
        self.names = aggregator.feature_names()
        aggregations = aggregator.output_aggregations
        record = [0] * (B.R_WIN + len(self.windows) + len(aggregations))
        record[B.R_STATS] = self.stats
        record[B.R_PERIOD] = period
        record[B.R_N] = ring
        record[B.R_NW] = len(self.windows)
        record[B.R_OFF] = offset
        record[B.R_IOFF] = ioffset
        record[B.R_OUT] = out_row
        record[B.R_NA] = len(aggregations)
        record[B.R_CAP] = 1 if max_value is not None else 0
        record[B.R_CAP_INT] = 1 if max_value is not None and float(max_value).is_integer() else 0
        record[B.R_VALUE] = value_row
        record[B.R_MODE] = mode
        record[B.R_KIND] = B.KIND_FIXED if self.fixed else B.KIND_SLIDING
        record[B.R_WMAX] = windows.max_window_ns
        if self.fixed:
            record[B.R_UNIT] = windows.smallest_window_unit_ns
        record[B.R_RINGS : B.R_RINGS + B.N_RINGS] = rings
        record[B.R_WOFF] = self.window_offset
        record[B.R_STRIDE] = self.stride
        for w, (ns, _) in enumerate(self.windows):
            record[B.R_WIN + w] = ns // period
        codes = B.R_WIN + len(self.windows)
        for a, name in enumerate(aggregations):
            record[codes + a] = AGGREGATIONS[name].code
        self.record = record
        # whether max_value is an int: capped results equal to it are ints, as in the reference
        self.int_cap = max_value if record[B.R_CAP_INT] and isinstance(max_value, int) else None

    # ---- stored form: the window blocks and the ring's filled buckets only (a bucket is emptied
    # before its first value, so what an unfilled slot holds is never read)
    def _filled(self, ints):
        """(keys, ring) bool: which ring slots of each key hold a bucket (ints: the key's blocks;
        slot j is bit j % 32 of bitmap word j // 32)."""
        words = np.ascontiguousarray(ints[:, B.HEADER :])
        bits = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")
        return bits.reshape(len(ints), -1, 64)[:, :, :32].reshape(len(ints), -1)[:, : self.ring].astype(bool)

    def _filled_columns(self, ints, head):
        """For each filled bucket of the keys (in key order, then slot order): its key's row, and
        the columns of its statistics in a row of the keys' blocks."""
        filled = np.flatnonzero(self._filled(ints))
        slots = filled % self.ring
        return filled // self.ring, head + slots[:, None] * self.stride + np.arange(self.stride)

    def pack(self, floats, ints):
        """The stored form of the blocks of some keys (rows of `floats`, `ints`): one bytes value of
        floats and one of ints per key."""
        n = len(floats)
        head = self.ring_start - self.offset
        owners, columns = self._filled_columns(ints, head)
        # each key's window blocks, then its filled buckets, one key after the other
        sizes = head + np.bincount(owners, minlength=n) * self.stride
        ends = np.cumsum(sizes)
        starts = ends - sizes
        out = np.empty(int(ends[-1]) if n else 0)
        heads = (starts[:, None] + np.arange(head)).ravel()
        out[heads] = floats[:, :head].ravel()
        in_ring = np.ones(len(out), dtype=bool)
        in_ring[heads] = False
        out[in_ring] = floats[owners[:, None], columns].ravel()
        data = out.tobytes()
        packed = [
            data[8 * start : 8 * end] for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
        ]
        width = 8 * ints.shape[1]
        ints_data = np.ascontiguousarray(ints).tobytes()
        return packed, [ints_data[i * width : (i + 1) * width] for i in range(n)]

    def unpack(self, packed, ints, where):
        """The blocks (floats, ints: arrays, a row per key) of their stored form; `where` names
        them in errors."""
        n = len(packed)
        iwidth = self.iend - self.ioffset
        if any(len(i) != 8 * iwidth for i in ints):
            raise ValueError(f"{where}: stored int blocks of {iwidth * 8} bytes expected")
        ints = np.frombuffer(b"".join(ints), dtype=np.int64).reshape(n, iwidth)
        head = self.ring_start - self.offset
        owners, columns = self._filled_columns(ints, head)
        sizes = head + np.bincount(owners, minlength=n) * self.stride
        lengths = np.fromiter(map(len, packed), dtype=np.int64, count=n)
        wrong = np.flatnonzero(lengths != 8 * sizes)
        if len(wrong):
            i = int(wrong[0])
            raise ValueError(
                f"{where}: a stored float block of {lengths[i]} bytes, not the {8 * sizes[i]} its filled "
                "buckets take"
            )
        values = np.frombuffer(b"".join(packed), dtype=np.float64)
        starts = np.cumsum(sizes) - sizes
        heads = (starts[:, None] + np.arange(head)).ravel()
        in_ring = np.ones(len(values), dtype=bool)
        in_ring[heads] = False
        floats = np.zeros((n, self.end - self.offset))
        floats[:, :head] = values[heads].reshape(n, head)
        floats[owners[:, None], columns] = values[in_ring].reshape(-1, self.stride)
        return floats, ints


def _cfg(layouts):
    cfg = [len(layouts)] + [0] * len(layouts)
    for a, layout in enumerate(layouts):
        cfg[1 + a] = len(cfg)
        cfg += layout.record
    return np.asarray(cfg, dtype=np.int64)


class Group:
    """Aggregators of one kind of window (sliding or fixed) whose state shares the rows of one
    array: `state[slot]` holds every aggregator's buckets for the key in `slot`."""

    def __init__(self, fixed, aggregators, capacity):
        self.fixed = fixed
        self.layouts = []
        offset = 0
        ioffset = 0
        out_row = 0
        for a, aggregator in enumerate(aggregators):
            layout = Layout(aggregator, offset, ioffset, out_row, a)
            self.layouts.append(layout)
            offset = layout.end
            ioffset = layout.iend
            out_row += len(layout.names)
        self.width = max(offset, 1)
        self.iwidth = max(ioffset, 1)
        self.n_features = out_row
        self.names = [name for layout in self.layouts for name in layout.names]
        self.cfg = _cfg(self.layouts)
        self.max_values = np.asarray([layout.max_value for layout in self.layouts], dtype=np.float64)
        self._rows = GrowingRows(capacity, self.width, np.float64, 0.0)
        self._irows = GrowingRows(capacity, self.iwidth, np.int64, B.NO_STATE)
        self.state = self._rows.array
        self.istate = self._irows.array
        # per slot, for tables over a storage: whether the key's stored state was loaded, and
        # whether the state changed since it was last saved
        self.loaded = np.zeros(capacity, dtype=bool)
        self.dirty = np.zeros(capacity, dtype=bool)

    def grow(self, capacity):
        self._rows.grow(capacity)
        self._irows.grow(capacity)
        self.state = self._rows.array
        self.istate = self._irows.array
        for name in ("loaded", "dirty"):
            old = getattr(self, name)
            grown = np.zeros(capacity, dtype=bool)
            grown[: len(old)] = old
            setattr(self, name, grown)

    def clear(self, slots):
        """Empties the rows `slots` (as new rows are), for other keys."""
        self.state[slots] = 0.0
        self.istate[slots] = B.NO_STATE
        self.loaded[slots] = False
        self.dirty[slots] = False

    def compacted(self, live, capacity):
        """Keeps only the rows `live` (in that order, from row 0) in arrays of `capacity` rows."""
        count = len(live)
        rows = GrowingRows(capacity, self.width, np.float64, 0.0)
        irows = GrowingRows(capacity, self.iwidth, np.int64, B.NO_STATE)
        rows.array[:count] = self.state[live]
        irows.array[:count] = self.istate[live]
        self._rows, self._irows = rows, irows
        self.state, self.istate = rows.array, irows.array
        for name in ("loaded", "dirty"):
            kept = np.zeros(capacity, dtype=bool)
            kept[:count] = getattr(self, name)[live]
            setattr(self, name, kept)

    def put(self, layout, slots, floats, ints):
        """Puts the state blocks of one aggregator (rows of `floats`, `ints`) in `slots`."""
        self.state[slots, layout.offset : layout.end] = floats
        self.istate[slots, layout.ioffset : layout.iend] = ints

    def take_dirty(self, count):
        """The changed slots among the first `count` (marked clean), and their rows (copies)."""
        slots = np.flatnonzero(self.dirty[:count])
        self.dirty[slots] = False
        return slots, self.state[slots], self.istate[slots]

    def with_value_rows(self, value_rows):
        """The cfg of this group with the aggregators reading other rows of `values`."""
        cfg = self.cfg.copy()
        for a in range(len(self.layouts)):
            cfg[cfg[1 + a] + B.R_VALUE] = value_rows[a]
        return cfg


class AggregationState:
    """Per-key window state of a table: key slots and the registered aggregator groups.

    Slots of released keys (`release`) are reused by new keys; once most slots are free, the rows
    are moved together into smaller arrays, so that memory follows the keys held."""

    def __init__(self):
        self.slots = {}
        # the key of each slot (None for a released slot)
        self.keys = []
        self.free = []
        # the batch that last used each slot (see touch), for releasing the least recently used
        self.clock = 0
        self.stamps = np.zeros(64, dtype=np.int64)
        # whether every key is a str; then the keys as Arrow arrays, by string type (see _known_text)
        self._all_text = True
        self._text_keys = {}
        self.capacity = 64
        self.groups = []
        # aggregator name -> (group, index in group)
        self.by_name = {}
        # the aggregators that aggregating steps registered, in the order they did: as in the
        # reference, each such step aggregates every event into all of them
        self.aggregated = []
        # bumped whenever aggregators are registered, so that readers refresh their plans
        self.version = 0

    def register(self, aggregators, aggregating=True):
        """Registers the aggregators the table does not hold yet (in one new group per kind of
        window); those it holds must be defined the same (another step, or an earlier flow).
        `aggregating`: whether a step aggregates into them (not only reads them)."""
        new = []
        for aggregator in aggregators:
            held = self.by_name.get(aggregator.name)
            if held is None:
                new.append(aggregator)
                continue
            group, index = held
            other = group.layouts[index].aggregator
            if not _same(other, aggregator):
                raise ValueError(
                    f"the table already aggregates {aggregator.name!r} differently: "
                    f"{other!r}, not {aggregator!r}"
                )
        for fixed in (False, True):
            kind = [a for a in new if isinstance(a.windows, FixedWindows) == fixed]
            if kind:
                group = Group(fixed, kind, self.capacity)
                self.groups.append(group)
                for i, aggregator in enumerate(kind):
                    self.by_name[aggregator.name] = (group, i)
        changed = bool(new)
        if aggregating:
            names = {a.name for a in self.aggregated}
            for aggregator in aggregators:
                if aggregator.name not in names:
                    names.add(aggregator.name)
                    group, index = self.by_name[aggregator.name]
                    self.aggregated.append(group.layouts[index].aggregator)
                    changed = True
        if changed:
            self.version += 1

    def slots_of(self, keys):
        """The slot of each key (an int64 array), giving new keys new slots."""
        if type(keys) is list and len(keys) == 1:
            # one live event
            key = table_key(keys[0])
            slot = self.slots.get(key)
            return np.array([self._new_slot(key) if slot is None else slot], dtype=_INT64)
        as_arrow = getattr(keys, "arrow", None)
        if as_arrow is not None:
            found = self._slots_of_arrow(as_arrow())
            if found is not None:
                return found
        if list in set(map(type, keys)):
            keys = [table_key(k) for k in keys]
        found = list(map(self.slots.get, keys))
        if None in found:
            # grown once for the batch, not once per doubling
            self._reserve(len(self.keys) + found.count(None))
            slots = self.slots
            for i, slot in enumerate(found):
                if slot is None:
                    key = keys[i]
                    slot = slots.get(key)
                    found[i] = self._new_slot(key) if slot is None else slot
        return np.array(found, dtype=_INT64)

    def _slots_of_arrow(self, array):
        """Slots of keys that a source hands as an Arrow string array: only new keys become
        Python objects. None when the array is not such an array."""
        if array is None or array.null_count:
            return None
        known = self._known_text(array.type, len(array))
        if known is None:
            return self._slots_of_distinct(array)
        found = pc.index_in(array, value_set=known)
        if found.null_count:
            # keys in order of first appearance, as the events bring them
            self.slots_of(pc.unique(array.filter(found.is_null())).to_pylist())
            known = self._known_text(array.type, len(array))
            if known is None:
                # the new keys made the table too big to look the batch up in
                return self._slots_of_distinct(array)
            found = pc.index_in(array, value_set=known)
        return arrow_arrays.to_numpy(found).astype(np.int64)

    def _slots_of_distinct(self, array):
        """Slots of an Arrow string array's keys, by looking up each distinct key once."""
        encoded = array.dictionary_encode()
        distinct = self.slots_of(encoded.dictionary.to_pylist())
        return distinct[arrow_arrays.to_numpy(encoded.indices)]

    def _known_text(self, kind, n):
        """Every key, in slot order, as an Arrow array of `kind` (a string type): its positions
        are the slots. None when some key is not a str, when some slot is free, or when looking the
        batch's n keys up among them would cost more than hashing the batch's own keys."""
        if not self._all_text or self.free or len(self.keys) > 4 * n:
            return None
        known = self._text_keys.get(kind)
        count = 0 if known is None else len(known)
        if count < len(self.keys):
            more = arrow_arrays.text_array(self.keys[count:], kind)
            known = more if known is None else pa.concat_arrays([known, more])
            self._text_keys[kind] = known
        return known

    def existing_slots(self, keys):
        """The slot of each key, -1 for keys the table has no state for."""
        if list in set(map(type, keys)):
            keys = [table_key(k) for k in keys]
        get = self.slots.get
        return np.array([get(k, -1) for k in keys], dtype=np.int64)

    def _new_slot(self, key):
        if self.free:
            slot = self.free.pop()
            self.keys[slot] = key
        else:
            slot = len(self.keys)
            self.keys.append(key)
        self.slots[key] = slot
        if type(key) is not str:
            self._all_text = False
        if slot >= self.capacity:
            self._reserve(slot + 1)
        return slot

    def touch(self, slots):
        """Notes that a batch used `slots`."""
        self.clock += 1
        self.stamps[slots] = self.clock

    def release(self, slots):
        """Forgets the keys of `slots`: their rows are emptied, for new keys."""
        for slot in slots.tolist():
            del self.slots[self.keys[slot]]
            self.keys[slot] = None
        for group in self.groups:
            group.clear(slots)
        self.stamps[slots] = 0
        self.free.extend(slots.tolist())
        self._text_keys = {}
        if len(self.free) > len(self.slots) and self.capacity > _COMPACT_FROM:
            self._compact()

    def _compact(self):
        """Moves the held keys' rows to the first slots, in arrays sized for them."""
        live = np.array(sorted(self.slots.values()), dtype=np.int64)
        capacity = 64
        while capacity < len(live):
            capacity *= 2
        self.keys = [self.keys[slot] for slot in live.tolist()]
        self.slots = {key: slot for slot, key in enumerate(self.keys)}
        for group in self.groups:
            group.compacted(live, capacity)
        stamps = np.zeros(capacity, dtype=np.int64)
        stamps[: len(live)] = self.stamps[live]
        self.stamps = stamps
        self.free = []
        self.capacity = capacity

    def _reserve(self, n):
        """Room for n keys in every group's arrays (capacity doubled as often as needed)."""
        if n > self.capacity:
            while self.capacity < n:
                self.capacity *= 2
            for group in self.groups:
                group.grow(self.capacity)
            stamps = np.zeros(self.capacity, dtype=np.int64)
            stamps[: len(self.stamps)] = self.stamps
            self.stamps = stamps


def _same(a, b):
    return a is b or (
        a.field == b.field
        and a.aggregations == b.aggregations
        and a.windows == b.windows
        and a.max_value == b.max_value
    )


def aggregation_state(table):
    """The table's aggregation state, created on first use."""
    state = table._aggregation_state
    if state is None:
        state = table._aggregation_state = AggregationState()
    return state


def describe(layout):
    """What made an aggregator's state (a JSON-able dict): what its blocks are stored with, so
    that state is read back only by aggregators that make the same."""
    aggregator = layout.aggregator
    windows = aggregator.windows
    return {
        "field": aggregator.field if isinstance(aggregator.field, str) else None,
        "aggregations": list(aggregator.aggregations),
        "kind": "fixed" if layout.fixed else "sliding",
        "windows": [text for _, text in windows.windows_ns],
        "windows_ns": [ns for ns, _ in windows.windows_ns],
        "period_ns": windows.period_ns,
        "max_value": aggregator.max_value,
        "statistics": [name for bit, name in enumerate(STAT_NAMES) if layout.stats & (1 << bit)],
        "layout": LAYOUT_VERSION,
        "floats": layout.end - layout.offset,
        "ints": layout.iend - layout.ioffset,
    }


# what must be equal for stored state to be read (a field given as a function is not compared)
_COMPARED = (
    "layout",
    "kind",
    "field",
    "windows_ns",
    "period_ns",
    "statistics",
    "max_value",
    "floats",
    "ints",
)


def difference(stored, given):
    """How the description `given` differs from `stored` in what the state means (None if not)."""
    if REFERENCE_FORM in stored:
        # storey 1.0.6 describes the kind of windows and the period alone (the driver checks them
        # against the buckets it reads)
        kind = "fixed" if stored[REFERENCE_FORM].get("window_type") == "FixedWindow" else "sliding"
        if kind != given.get("kind"):
            return f"kind: stored {kind!r}, given {given.get('kind')!r}"
        return None
    for name in _COMPARED:
        if name == "field" and (stored.get(name) is None or given.get(name) is None):
            continue
        if stored.get(name) != given.get(name):
            if name == "windows_ns":
                return f"windows: stored {stored.get('windows')}, given {given.get('windows')}"
            return f"{name}: stored {stored.get(name)!r}, given {given.get(name)!r}"
    return None


# the key of a description that is storey 1.0.6's (its .schema entry, under this key): the
# kind of windows, the period and the raw aggregates kept, not the windows
REFERENCE_FORM = "storey_1_0_6"


def aggregator_for_features(name, description, features):
    """For a description in storey 1.0.6's form: the FieldAggregator over the windows and
    aggregations that `features` ('<name>_<aggregation>_<window>') ask of aggregator `name`, as
    storey 1.0.6 reads them (None when none does)."""
    entry = description[REFERENCE_FORM]
    windows = {}
    aggregations = []
    prefix = f"{name}_"
    for feature in features:
        if not feature.startswith(prefix):
            continue
        aggregation, _, window = feature[len(prefix) :].rpartition("_")
        if aggregation not in AGGREGATIONS:
            continue
        try:
            windows.setdefault(window, parse_duration(window))
        except ValueError:
            continue
        if aggregation not in aggregations:
            aggregations.append(aggregation)
    if not aggregations:
        return None
    texts = sorted(windows, key=windows.get)
    if entry.get("window_type") == "FixedWindow":
        made = FixedWindows(texts)
    else:
        made = SlidingWindows(texts, f"{round(entry['period_millis'] / 1000)}s")
    return FieldAggregator(name, name, aggregations, made)


def aggregator_from_description(name, description):
    """The FieldAggregator that makes the state `description` describes (to read it)."""
    if description["kind"] == "fixed":
        windows = FixedWindows(description["windows"])
    else:
        windows = SlidingWindows(description["windows"], f"{description['period_ns'] // 10**9}s")
    return FieldAggregator(
        name,
        description["field"] or name,
        description["aggregations"],
        windows,
        max_value=description["max_value"],
    )
