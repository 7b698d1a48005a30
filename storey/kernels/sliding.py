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
    clear_buckets,
    insert,
    newest_last,
    progressive,
    reset_window,
    scan,
    window_from_ring,
    write,
    write_absent,
    write_capped,
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
    R_CAP,
    R_N,
    R_NW,
    R_OFF,
    R_PERIOD,
    R_RINGS,
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


@njit(cache=True, nogil=True)
def _drop(row, cfg, rec, wo, d, n):
    """Takes bucket d out of a window's running aggregate; True when the window must be
    recomputed from its buckets instead."""
    rings = rec + R_RINGS
    j = d % n
    c = row[cfg[rings + K_CNT] + j]
    if c == 0.0:
        return False
    row[wo + W_CNT] -= c
    redo = False
    o = cfg[rings + K_SUM]
    if o >= 0:
        x = row[o + j]
        before = row[wo + W_SUM]
        after = before - x
        if not np.isfinite(x) or not np.isfinite(before) or abs(after) < abs(before) * _CANCELLATION:
            redo = True
        row[wo + W_SUM] = after
    o = cfg[rings + K_SQR]
    if o >= 0:
        x = row[o + j]
        before = row[wo + W_SQR]
        after = before - x
        if not np.isfinite(x) or not np.isfinite(before) or abs(after) < abs(before) * _CANCELLATION:
            redo = True
        row[wo + W_SQR] = after
    o = cfg[rings + K_MIN]
    if o >= 0 and row[o + j] <= row[wo + W_MIN]:
        redo = True
    o = cfg[rings + K_MAX]
    if o >= 0 and row[o + j] >= row[wo + W_MAX]:
        redo = True
    return redo


@njit(cache=True, nogil=True)
def _advance(row, cfg, rec, old, new):
    """Moves the key's latest bucket from `old` to `new` (> old): buckets leave the windows and
    the ring slots of buckets old+1..new are emptied."""
    n = cfg[rec + R_N]
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
        for d in range(old - size + 1, new - size + 1):
            if _drop(row, cfg, rec, wo, d, n):
                redo = True
        if row[wo + W_FB] < new - size + 1:
            redo = True
        if row[wo + W_CNT] == 0.0:
            reset_window(row, wo)
            redo = False
        row[wo + _RECOMPUTE] = 1.0 if redo else 0.0
    clear_buckets(row, cfg, rec, old + 1, new)
    for w in range(nw):
        wo = woff + w * W_SIZE
        if row[wo + _RECOMPUTE] != 0.0:
            size = cfg[rec + R_WIN + w]
            window_from_ring(row, cfg, rec, wo, new - size + 1, new)
            row[wo + _RECOMPUTE] = 0.0
    row[cfg[rec + R_OFF] + H_B] = new


@njit(cache=True, nogil=True)
def _running(row, cfg, rec, latest, out, flags, i):
    """Features at the latest bucket, from the running aggregates."""
    nw = cfg[rec + R_NW]
    woff = cfg[rec + R_WOFF]
    n = cfg[rec + R_N]
    of = cfg[rec + R_RINGS + K_FOFF]
    ol = cfg[rec + R_RINGS + K_LOFF]
    for w in range(nw):
        wo = woff + w * W_SIZE
        first = np.nan
        fb = row[wo + W_FB]
        if of >= 0 and fb < INF:
            first = row[cfg[rec + R_RINGS + K_FVAL] + np.int64(fb) % n]
        last = np.nan
        if ol >= 0:
            last = newest_last(row, cfg, rec, latest - cfg[rec + R_WIN + w] + 1, latest)
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
def _scanned(row, cfg, rec, mv, latest, r, out, flags, i):
    """Features of the windows ending at bucket r, from the buckets the ring keeps."""
    nw = cfg[rec + R_NW]
    n = cfg[rec + R_N]
    kept = latest - n + 1
    capped = cfg[rec + R_CAP] == 1
    if capped:
        # the reference's windows start at the key's first bucket
        first_bucket = np.int64(row[cfg[rec + R_OFF] + H_FIRST])
        if first_bucket > kept:
            kept = first_bucket
    rings = rec + R_RINGS
    for w in range(nw):
        lo = r - cfg[rec + R_WIN + w] + 1
        if lo < kept:
            lo = kept
        hi = r if r < latest else latest
        if hi < lo:
            cnt, sm, sq, mn, mx, first, last = 0.0, 0.0, 0.0, INF, -INF, np.nan, np.nan
        else:
            cnt, sm, sq, mn, mx, first, last = scan(row, cfg, rec, lo, hi)
        if not capped:
            write(out, flags, cfg, rec, w, i, cnt, sm, sq, mn, mx, first, last)
            continue
        cnt, cnt_c = progressive(row, cfg[rings + K_CNT], n, lo, hi, mv)
        sm_c = False
        sq_c = False
        if cfg[rings + K_SUM] >= 0:
            sm, sm_c = progressive(row, cfg[rings + K_SUM], n, lo, hi, mv)
        if cfg[rings + K_SQR] >= 0:
            sq, sq_c = progressive(row, cfg[rings + K_SQR], n, lo, hi, mv)
        write_capped(out, flags, cfg, rec, mv, w, i, cnt, cnt_c, sm, sm_c, sq, sq_c, mn, mx, first, last)


@njit(cache=True, nogil=True)
def _update(row, cfg, rec, mv, t, v, out, flags, i):
    o = cfg[rec + R_OFF]
    period = cfg[rec + R_PERIOD]
    n = cfg[rec + R_N]
    nw = cfg[rec + R_NW]
    woff = cfg[rec + R_WOFF]
    b = t // period
    off = float(t - b * period)
    latest_f = row[o + H_B]
    if latest_f != latest_f:
        clear_buckets(row, cfg, rec, b - n + 1, b)
        for w in range(nw):
            reset_window(row, woff + w * W_SIZE)
        row[o + H_B] = b
        row[o + H_FIRST] = b
        latest = b
    else:
        latest = np.int64(latest_f)
        if b > latest:
            _advance(row, cfg, rec, latest, b)
            latest = b
        elif b < latest - n + 1:
            write_absent(out, flags, cfg, rec, i)
            return
    insert(row, cfg, rec, mv, b, off, v)
    capped = cfg[rec + R_CAP] == 1
    if not capped:
        for w in range(nw):
            if b >= latest - cfg[rec + R_WIN + w] + 1:
                add_to_window(row, cfg, rec, woff + w * W_SIZE, b, v)
    if b == latest and not capped:
        _running(row, cfg, rec, latest, out, flags, i)
    else:
        _scanned(row, cfg, rec, mv, latest, b, out, flags, i)


@njit(cache=True, nogil=True)
def _read(row, cfg, rec, mv, t, mode, out, flags, i):
    latest_f = row[cfg[rec + R_OFF] + H_B]
    if latest_f != latest_f:
        if mode == MODE_AGG:
            write_empty(out, flags, cfg, rec, mv, i)
        else:
            write_absent(out, flags, cfg, rec, i)
        return
    latest = np.int64(latest_f)
    r = t // cfg[rec + R_PERIOD]
    if mode == MODE_AGG and r > latest:
        # like the reference, an event that is not aggregated reads the windows as they are
        r = latest
    if r < latest - cfg[rec + R_N] + 1:
        write_absent(out, flags, cfg, rec, i)
    elif r == latest and cfg[rec + R_CAP] != 1:
        _running(row, cfg, rec, latest, out, flags, i)
    else:
        _scanned(row, cfg, rec, mv, latest, r, out, flags, i)


@njit(cache=True, nogil=True)
def sliding_update(cfg, max_values, times, slots, values, valid, state, out, flags):
    """Aggregates a batch in arrival order and writes every event's features.

    cfg: int64 records of the aggregators (cfg[0] aggregators, cfg[1 + a] the record of a);
    max_values: float64 per aggregator; times: int64 ns; slots: int64 state row of each event's
    key; values/valid: float64/uint8 [value row, event]; state: float64 [slot, ...];
    out/flags: float64/uint8 [feature, event].
    """
    naggr = cfg[0]
    for i in range(times.shape[0]):
        t = times[i]
        row = state[slots[i]]
        for a in range(naggr):
            rec = cfg[1 + a]
            vr = cfg[rec + R_VALUE]
            if valid[vr, i]:
                _update(row, cfg, rec, max_values[a], t, values[vr, i], out, flags, i)
            else:
                _read(row, cfg, rec, max_values[a], t, MODE_AGG, out, flags, i)


@njit(cache=True, nogil=True)
def sliding_read(cfg, max_values, times, slots, mode, state, out, flags):
    """Writes the features each event's key has at the event's time, changing nothing
    (mode: MODE_AGG, MODE_QUERY or MODE_LAST_CLOSED; a slot of -1 is a key without state)."""
    naggr = cfg[0]
    for i in range(times.shape[0]):
        slot = slots[i]
        for a in range(naggr):
            rec = cfg[1 + a]
            if slot < 0:
                write_absent(out, flags, cfg, rec, i)
            else:
                _read(state[slot], cfg, rec, max_values[a], times[i], mode, out, flags, i)
