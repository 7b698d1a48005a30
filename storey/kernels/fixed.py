"""Fixed windows: a ring of buckets per key (two of the largest windows), and a running aggregate
per window over the buckets from its start `lo` to the latest one.

Windows are aligned to multiples of their length since the epoch: when an event opens a new window
its running aggregate restarts. Aggregators with min/max/first/last (mode 1) follow the
reference's precalculated windows instead: whenever an event enters a new smallest window, every
window restarts from the first reference bucket (half the smallest window) at or after
max(event time rounded up to the next unit of the smallest window - window length, start of the
largest window), and accumulates from there until the next smallest window begins.
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
    H_OFF,
    K_CNT,
    K_FOFF,
    K_FVAL,
    K_LOFF,
    K_SQR,
    K_SUM,
    MODE_AGG,
    MODE_LAST_CLOSED,
    R_CAP,
    R_MODE,
    R_N,
    R_NW,
    R_OFF,
    R_PERIOD,
    R_REFP,
    R_RINGS,
    R_SMALL,
    R_UNIT,
    R_VALUE,
    R_WIN,
    R_WMAX,
    R_WOFF,
    W_CNT,
    W_FB,
    W_LO,
    W_MAX,
    W_MIN,
    W_SIZE,
    W_SQR,
    W_SUM,
)


@njit(cache=True, nogil=True)
def _start(cfg, rec, t, w):
    """The first bucket of the range window w covers for an event at time t."""
    period = cfg[rec + R_PERIOD]
    length = cfg[rec + R_WIN + w] * period
    if cfg[rec + R_MODE] == 0:
        return (t // length) * length // period
    unit = cfg[rec + R_UNIT]
    largest = cfg[rec + R_WMAX]
    ref_period = cfg[rec + R_REFP]
    lo = (t // unit) * unit + unit - length
    opened = (t // largest) * largest
    if lo < opened:
        lo = opened
    lo = -((-lo) // ref_period) * ref_period
    return lo // period


@njit(cache=True, nogil=True)
def _same_range(cfg, rec, t, latest_t, w):
    """Whether an event at t still belongs to the range window w has at the latest time."""
    if cfg[rec + R_MODE] == 0:
        length = cfg[rec + R_WIN + w] * cfg[rec + R_PERIOD]
        return t // length == latest_t // length
    smallest = cfg[rec + R_SMALL]
    return t // smallest == latest_t // smallest


@njit(cache=True, nogil=True)
def _features(row, cfg, rec, mv, latest, lo, hi, running_wo, w, out, flags, i):
    """Writes window w's features over buckets lo..hi (its running aggregate when running_wo >= 0)."""
    capped = cfg[rec + R_CAP] == 1
    if hi > latest:
        hi = latest
    if running_wo >= 0 and not capped:
        first = np.nan
        fb = row[running_wo + W_FB]
        n = cfg[rec + R_N]
        if cfg[rec + R_RINGS + K_FOFF] >= 0 and fb < INF:
            first = row[cfg[rec + R_RINGS + K_FVAL] + np.int64(fb) % n]
        last = np.nan
        if cfg[rec + R_RINGS + K_LOFF] >= 0:
            last = newest_last(row, cfg, rec, lo, hi)
        write(
            out,
            flags,
            cfg,
            rec,
            w,
            i,
            row[running_wo + W_CNT],
            row[running_wo + W_SUM],
            row[running_wo + W_SQR],
            row[running_wo + W_MIN],
            row[running_wo + W_MAX],
            first,
            last,
        )
        return
    if hi < lo:
        cnt, sm, sq, mn, mx, first, last = 0.0, 0.0, 0.0, INF, -INF, np.nan, np.nan
    else:
        cnt, sm, sq, mn, mx, first, last = scan(row, cfg, rec, lo, hi)
    if not capped:
        write(out, flags, cfg, rec, w, i, cnt, sm, sq, mn, mx, first, last)
        return
    n = cfg[rec + R_N]
    rings = rec + R_RINGS
    cnt, cnt_c = progressive(row, cfg[rings + K_CNT], n, lo, hi, mv)
    sm_c = False
    sq_c = False
    if cfg[rings + K_SUM] >= 0:
        sm, sm_c = progressive(row, cfg[rings + K_SUM], n, lo, hi, mv)
    if cfg[rings + K_SQR] >= 0:
        sq, sq_c = progressive(row, cfg[rings + K_SQR], n, lo, hi, mv)
    write_capped(out, flags, cfg, rec, mv, w, i, cnt, cnt_c, sm, sm_c, sq, sq_c, mn, mx, first, last)


@njit(cache=True, nogil=True)
def _kept_from(cfg, rec, latest, latest_t):
    """The oldest bucket the key keeps: the start of the largest window before the latest one."""
    largest = cfg[rec + R_WMAX]
    kept = ((latest_t // largest) - 1) * largest // cfg[rec + R_PERIOD]
    ring_start = latest - cfg[rec + R_N] + 1
    return kept if kept > ring_start else ring_start


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
    in_order = True
    if latest_f != latest_f:
        clear_buckets(row, cfg, rec, b - n + 1, b)
        row[o + H_B] = b
        row[o + H_OFF] = off
        latest = b
        for w in range(nw):
            wo = woff + w * W_SIZE
            reset_window(row, wo)
            row[wo + W_LO] = _start(cfg, rec, t, w)
    else:
        latest = np.int64(latest_f)
        latest_t = latest * period + np.int64(row[o + H_OFF])
        if t >= latest_t:
            if b > latest:
                clear_buckets(row, cfg, rec, latest + 1, b)
                row[o + H_B] = b
                latest = b
            row[o + H_OFF] = float(t - latest * period)
            for w in range(nw):
                if not _same_range(cfg, rec, t, latest_t, w):
                    wo = woff + w * W_SIZE
                    lo = _start(cfg, rec, t, w)
                    row[wo + W_LO] = lo
                    window_from_ring(row, cfg, rec, wo, lo, b)
        else:
            if b < _kept_from(cfg, rec, latest, latest_t):
                write_absent(out, flags, cfg, rec, i)
                return
            in_order = False
    insert(row, cfg, rec, mv, b, off, v)
    for w in range(nw):
        wo = woff + w * W_SIZE
        if b >= row[wo + W_LO]:
            add_to_window(row, cfg, rec, wo, b, v)
    for w in range(nw):
        wo = woff + w * W_SIZE
        if in_order:
            _features(row, cfg, rec, mv, latest, np.int64(row[wo + W_LO]), b, wo, w, out, flags, i)
        else:
            lo = _start(cfg, rec, t, w)
            if cfg[rec + R_MODE] == 0:
                hi = lo + cfg[rec + R_WIN + w] - 1
            else:
                hi = b
            kept = _kept_from(cfg, rec, latest, latest * period + np.int64(row[o + H_OFF]))
            if lo < kept:
                lo = kept
            _features(row, cfg, rec, mv, latest, lo, hi, -1, w, out, flags, i)


@njit(cache=True, nogil=True)
def _read(row, cfg, rec, mv, t, mode, out, flags, i):
    o = cfg[rec + R_OFF]
    latest_f = row[o + H_B]
    if latest_f != latest_f:
        if mode == MODE_AGG:
            write_empty(out, flags, cfg, rec, mv, i)
        else:
            write_absent(out, flags, cfg, rec, i)
        return
    period = cfg[rec + R_PERIOD]
    latest = np.int64(latest_f)
    latest_t = latest * period + np.int64(row[o + H_OFF])
    if mode == MODE_AGG and t > latest_t:
        t = latest_t
    kept = _kept_from(cfg, rec, latest, latest_t)
    if t // period < kept:
        write_absent(out, flags, cfg, rec, i)
        return
    woff = cfg[rec + R_WOFF]
    for w in range(cfg[rec + R_NW]):
        size = cfg[rec + R_WIN + w]
        if mode == MODE_LAST_CLOSED:
            length = size * period
            lo = ((t // length) - 1) * length // period
            hi = lo + size - 1
            if lo < kept:
                lo = kept
            _features(row, cfg, rec, mv, latest, lo, hi, -1, w, out, flags, i)
        elif _same_range(cfg, rec, t, latest_t, w):
            wo = woff + w * W_SIZE
            _features(row, cfg, rec, mv, latest, np.int64(row[wo + W_LO]), latest, wo, w, out, flags, i)
        else:
            lo = _start(cfg, rec, t, w)
            if cfg[rec + R_MODE] == 0:
                hi = lo + size - 1
            else:
                hi = t // period
            if lo < kept:
                lo = kept
            _features(row, cfg, rec, mv, latest, lo, hi, -1, w, out, flags, i)


@njit(cache=True, nogil=True)
def fixed_update(cfg, max_values, times, slots, values, valid, state, out, flags):
    """Aggregates a batch in arrival order and writes every event's features (arguments as in
    `sliding_update`)."""
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
def fixed_read(cfg, max_values, times, slots, mode, state, out, flags):
    """Writes the features each event's key has at the event's time, changing nothing (arguments
    as in `sliding_read`)."""
    naggr = cfg[0]
    for i in range(times.shape[0]):
        slot = slots[i]
        for a in range(naggr):
            rec = cfg[1 + a]
            if slot < 0:
                write_absent(out, flags, cfg, rec, i)
            else:
                _read(state[slot], cfg, rec, max_values[a], times[i], mode, out, flags, i)
