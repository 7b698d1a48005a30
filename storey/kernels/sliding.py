"""Sliding windows: a ring of period buckets per key, and a running aggregate per window.

A window of n buckets, read at bucket r, covers buckets r - n + 1 .. r. The ring keeps the N
buckets of the longest window up to B, the latest bucket of the key. In-order events (bucket B)
read the running aggregates, updated as values arrive and as buckets leave the windows (sums are
recomputed from the ring when a subtraction would lose precision or a NaN/inf leaves; min and max
when the bucket holding them leaves). Late events and reads at other times scan the ring.
Aggregators with a `max_value` always scan, capping as the reference does.
"""

import numpy as np
from numba import njit

from .buckets import (
    INF,
    add_to_window,
    bit_index,
    capped_features,
    chunk,
    empty_slots,
    insert,
    newest_last,
    prefetch,
    reset_window,
    scan,
    slot,
    window_from_ring,
    write,
    write_absent,
    write_empty,
)
from .layout import (
    H_B,
    H_FIRST,
    K_CNT,
    K_FOFF,
    K_FVAL,
    K_LOFF,
    K_MAX,
    K_MIN,
    K_SQR,
    K_SUM,
    MODE_AGG,
    NO_STATE,
    R_CAP,
    R_IOFF,
    R_N,
    R_NW,
    R_OFF,
    R_PERIOD,
    R_RINGS,
    R_STRIDE,
    R_VALUE,
    R_WIN,
    R_WOFF,
    W_CNT,
    W_FB,
    W_MAX,
    W_MIN,
    W_SIZE,
    W_SQR,
    W_SUM,
)

# a subtraction that leaves less than this fraction of a sum is redone from the buckets
_CANCELLATION = 1.0 / (1 << 20)
_RECOMPUTE = 7  # spare field of a window block: set when the window must be recomputed
# how many events ahead the kernels ask for the state they will touch
_AHEAD = 6


@njit(cache=True, nogil=True, inline="always")
def _drop(row, cfg, rec, wo, s):
    """Takes the bucket at slot offset s out of a window's running aggregate; True when the
    window must be recomputed from its buckets instead."""
    rings = rec + R_RINGS
    c = row[cfg[rings + K_CNT] + s]
    if c == 0.0:
        return False
    row[wo + W_CNT] -= c
    redo = False
    o = cfg[rings + K_SUM]
    if o >= 0:
        x = row[o + s]
        before = row[wo + W_SUM]
        after = before - x
        if not np.isfinite(x) or not np.isfinite(before) or abs(after) < abs(before) * _CANCELLATION:
            redo = True
        row[wo + W_SUM] = after
    o = cfg[rings + K_SQR]
    if o >= 0:
        x = row[o + s]
        before = row[wo + W_SQR]
        after = before - x
        if not np.isfinite(x) or not np.isfinite(before) or abs(after) < abs(before) * _CANCELLATION:
            redo = True
        row[wo + W_SQR] = after
    o = cfg[rings + K_MIN]
    if o >= 0 and row[o + s] <= row[wo + W_MIN]:
        redo = True
    o = cfg[rings + K_MAX]
    if o >= 0 and row[o + s] >= row[wo + W_MAX]:
        redo = True
    return redo


@njit(cache=True, nogil=True, inline="always")
def _advance(row, irow, cfg, rec, old, new):
    """Moves the key's latest bucket from `old` to `new` (> old): buckets leave the windows and
    the ring slots of buckets old+1..new start empty."""
    stride = cfg[rec + R_STRIDE]
    nw = cfg[rec + R_NW]
    woff = cfg[rec + R_WOFF]
    for w in range(nw):
        wo = woff + w * W_SIZE
        size = cfg[rec + R_WIN + w]
        if new - old >= size or row[wo + W_CNT] == 0.0:
            reset_window(row, wo)
            row[wo + _RECOMPUTE] = 0.0
            continue
        redo = False
        b = old - size + 1
        last_dropped = new - size
        while b <= last_dropped:
            j, span, bits = chunk(irow, cfg, rec, b, last_dropped)
            while bits != 0:
                low = bits & -bits
                bits ^= low
                if _drop(row, cfg, rec, wo, (j + bit_index(low)) * stride):
                    redo = True
            b += span
        if row[wo + W_FB] < new - size + 1:
            redo = True
        if row[wo + W_CNT] == 0.0:
            reset_window(row, wo)
            redo = False
        row[wo + _RECOMPUTE] = 1.0 if redo else 0.0
    empty_slots(irow, cfg, rec, old + 1, new)
    for w in range(nw):
        wo = woff + w * W_SIZE
        if row[wo + _RECOMPUTE] != 0.0:
            size = cfg[rec + R_WIN + w]
            window_from_ring(row, irow, cfg, rec, wo, new - size + 1, new)
            row[wo + _RECOMPUTE] = 0.0
    irow[cfg[rec + R_IOFF] + H_B] = new


@njit(cache=True, nogil=True, inline="always")
def _running(row, irow, cfg, rec, latest, out, flags, i):
    """Features at the latest bucket, from the running aggregates."""
    nw = cfg[rec + R_NW]
    woff = cfg[rec + R_WOFF]
    of = cfg[rec + R_RINGS + K_FOFF]
    ol = cfg[rec + R_RINGS + K_LOFF]
    for w in range(nw):
        wo = woff + w * W_SIZE
        first = np.nan
        fb = row[wo + W_FB]
        if of >= 0 and fb < INF:
            first = row[cfg[rec + R_RINGS + K_FVAL] + slot(cfg, rec, np.int64(fb))]
        last = np.nan
        if ol >= 0:
            last = newest_last(row, irow, cfg, rec, latest - cfg[rec + R_WIN + w] + 1, latest)
        write(
            out,
            flags,
            cfg,
            rec,
            w,
            i,
            row[wo + W_CNT],
            row[wo + W_SUM],
            row[wo + W_SQR],
            row[wo + W_MIN],
            row[wo + W_MAX],
            first,
            last,
        )


@njit(cache=True, nogil=True)
def _scanned(row, irow, cfg, rec, mv, latest, r, out, flags, i):
    """Features of the windows ending at bucket r, from the buckets the ring keeps."""
    nw = cfg[rec + R_NW]
    kept = latest - cfg[rec + R_N] + 1
    capped = cfg[rec + R_CAP] == 1
    if capped:
        # the reference's windows start at the key's first bucket
        first_bucket = irow[cfg[rec + R_IOFF] + H_FIRST]
        if first_bucket > kept:
            kept = first_bucket
    for w in range(nw):
        lo = r - cfg[rec + R_WIN + w] + 1
        if lo < kept:
            lo = kept
        hi = r if r < latest else latest
        if capped:
            capped_features(row, irow, cfg, rec, mv, w, i, lo, hi, out, flags)
        elif hi < lo:
            write(out, flags, cfg, rec, w, i, 0.0, 0.0, 0.0, INF, -INF, np.nan, np.nan)
        else:
            cnt, sm, sq, mn, mx, first, last, _ = scan(row, irow, cfg, rec, lo, hi)
            write(out, flags, cfg, rec, w, i, cnt, sm, sq, mn, mx, first, last)


@njit(cache=True, nogil=True)
def _start_key(row, irow, cfg, rec, b):
    """The first value of a key: an empty ring and empty windows."""
    io = cfg[rec + R_IOFF]
    empty_slots(irow, cfg, rec, b - cfg[rec + R_N] + 1, b)
    woff = cfg[rec + R_WOFF]
    for w in range(cfg[rec + R_NW]):
        reset_window(row, woff + w * W_SIZE)
    irow[io + H_B] = b
    irow[io + H_FIRST] = b


@njit(cache=True, nogil=True, inline="always")
def _update(row, irow, cfg, rec, mv, t, v, out, flags, i):
    period = cfg[rec + R_PERIOD]
    b = t // period
    latest = irow[cfg[rec + R_IOFF] + H_B]
    if latest == NO_STATE:
        _start_key(row, irow, cfg, rec, b)
        latest = b
    elif b > latest:
        _advance(row, irow, cfg, rec, latest, b)
        latest = b
    elif b < latest - cfg[rec + R_N] + 1:
        write_absent(out, flags, cfg, rec, i)
        return
    insert(row, irow, cfg, rec, mv, b % cfg[rec + R_N], float(t - b * period), v)
    if cfg[rec + R_CAP] == 1:
        _scanned(row, irow, cfg, rec, mv, latest, b, out, flags, i)
        return
    woff = cfg[rec + R_WOFF]
    for w in range(cfg[rec + R_NW]):
        if b >= latest - cfg[rec + R_WIN + w] + 1:
            add_to_window(row, woff + w * W_SIZE, b, v)
    if b == latest:
        _running(row, irow, cfg, rec, latest, out, flags, i)
    else:
        _scanned(row, irow, cfg, rec, mv, latest, b, out, flags, i)


@njit(cache=True, nogil=True)
def _read(row, irow, cfg, rec, mv, t, mode, out, flags, i):
    latest = irow[cfg[rec + R_IOFF] + H_B]
    if latest == NO_STATE:
        if mode == MODE_AGG:
            write_empty(out, flags, cfg, rec, mv, i)
        else:
            write_absent(out, flags, cfg, rec, i)
        return
    r = t // cfg[rec + R_PERIOD]
    if mode == MODE_AGG and r > latest:
        # like the reference, an event that is not aggregated reads the windows as they are
        r = latest
    if r < latest - cfg[rec + R_N] + 1:
        write_absent(out, flags, cfg, rec, i)
    elif r == latest and cfg[rec + R_CAP] != 1:
        _running(row, irow, cfg, rec, latest, out, flags, i)
    else:
        _scanned(row, irow, cfg, rec, mv, latest, r, out, flags, i)


@njit(cache=True, nogil=True, inline="always")
def _prefetch(state, istate, cfg, rec, key_slot, t):
    """Asks for the cache lines an event at time t of the key in `key_slot` will touch: its
    header and bitmap, its windows, its bucket and the buckets leaving its windows."""
    prefetch(istate, key_slot, cfg[rec + R_IOFF])
    o = cfg[rec + R_OFF]
    ring = o + cfg[rec + R_NW] * W_SIZE
    for x in range(o, ring, 8):
        prefetch(state, key_slot, x)
    b = t // cfg[rec + R_PERIOD]
    prefetch(state, key_slot, ring + slot(cfg, rec, b))
    for w in range(cfg[rec + R_NW]):
        prefetch(state, key_slot, ring + slot(cfg, rec, b - cfg[rec + R_WIN + w]))


@njit(cache=True, nogil=True)
def sliding_update(cfg, max_values, times, slots, values, valid, state, istate, out, flags, part, parts):
    """Aggregates a batch in arrival order and writes every event's features.

    cfg: int64 records of the aggregators (cfg[0] aggregators, cfg[1 + a] the record of a);
    max_values: float64 per aggregator; times: int64 ns; slots: int64 state row of each event's
    key; values/valid: float64/uint8 [value row, event]; state/istate: float64/int64
    [slot, ...]; out/flags: float64/uint8 [feature, event]. Only the events whose slot is `part`
    modulo `parts` are processed: calls for different parts touch different keys and events, and
    can run at the same time.
    """
    naggr = cfg[0]
    n = times.shape[0]
    for i in range(n):
        key_slot = slots[i]
        if key_slot % parts != part:
            continue
        ahead = i + _AHEAD
        if ahead < n and slots[ahead] % parts == part:
            for a in range(naggr):
                _prefetch(state, istate, cfg, cfg[1 + a], slots[ahead], times[ahead])
        t = times[i]
        row = state[key_slot]
        irow = istate[key_slot]
        for a in range(naggr):
            rec = cfg[1 + a]
            vr = cfg[rec + R_VALUE]
            if valid[vr, i]:
                _update(row, irow, cfg, rec, max_values[a], t, values[vr, i], out, flags, i)
            else:
                _read(row, irow, cfg, rec, max_values[a], t, MODE_AGG, out, flags, i)


@njit(cache=True, nogil=True)
def sliding_read(cfg, max_values, times, slots, mode, state, istate, out, flags):
    """Writes the features each event's key has at the event's time, changing nothing
    (mode: MODE_AGG, MODE_QUERY or MODE_LAST_CLOSED; a slot of -1 is a key without state)."""
    naggr = cfg[0]
    for i in range(times.shape[0]):
        key_slot = slots[i]
        for a in range(naggr):
            rec = cfg[1 + a]
            if key_slot < 0:
                write_absent(out, flags, cfg, rec, i)
            else:
                _read(
                    state[key_slot], istate[key_slot], cfg, rec, max_values[a], times[i], mode, out, flags, i
                )
