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
    capped_features,
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
    H_OFF,
    K_FOFF,
    K_FVAL,
    K_LOFF,
    MODE_AGG,
    MODE_LAST_CLOSED,
    NO_STATE,
    R_CAP,
    R_IOFF,
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

_AHEAD = 6


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
def _features(row, irow, cfg, rec, mv, latest, lo, hi, running_wo, w, out, flags, i):
    """Writes window w's features over buckets lo..hi (its running aggregate when running_wo >= 0)."""
    if hi > latest:
        hi = latest
    if cfg[rec + R_CAP] == 1:
        capped_features(row, irow, cfg, rec, mv, w, i, lo, hi, out, flags)
        return
    if running_wo >= 0:
        first = np.nan
        fb = row[running_wo + W_FB]
        if cfg[rec + R_RINGS + K_FOFF] >= 0 and fb < INF:
            first = row[cfg[rec + R_RINGS + K_FVAL] + slot(cfg, rec, np.int64(fb))]
        last = np.nan
        if cfg[rec + R_RINGS + K_LOFF] >= 0:
            last = newest_last(row, irow, cfg, rec, lo, hi)
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
    elif hi < lo:
        write(out, flags, cfg, rec, w, i, 0.0, 0.0, 0.0, INF, -INF, np.nan, np.nan)
    else:
        cnt, sm, sq, mn, mx, first, last, _ = scan(row, irow, cfg, rec, lo, hi)
        write(out, flags, cfg, rec, w, i, cnt, sm, sq, mn, mx, first, last)


@njit(cache=True, nogil=True)
def _kept_from(cfg, rec, latest, latest_t):
    """The oldest bucket the key keeps: the start of the largest window before the latest one."""
    largest = cfg[rec + R_WMAX]
    kept = ((latest_t // largest) - 1) * largest // cfg[rec + R_PERIOD]
    ring_start = latest - cfg[rec + R_N] + 1
    return kept if kept > ring_start else ring_start


@njit(cache=True, nogil=True)
def _update(row, irow, cfg, rec, mv, t, v, out, flags, i):
    io = cfg[rec + R_IOFF]
    period = cfg[rec + R_PERIOD]
    n = cfg[rec + R_N]
    nw = cfg[rec + R_NW]
    woff = cfg[rec + R_WOFF]
    b = t // period
    off = t - b * period
    latest = irow[io + H_B]
    in_order = True
    if latest == NO_STATE:
        empty_slots(irow, cfg, rec, b - n + 1, b)
        irow[io + H_B] = b
        irow[io + H_OFF] = off
        latest = b
        for w in range(nw):
            wo = woff + w * W_SIZE
            reset_window(row, wo)
            row[wo + W_LO] = _start(cfg, rec, t, w)
    else:
        latest_t = latest * period + irow[io + H_OFF]
        if t >= latest_t:
            if b > latest:
                empty_slots(irow, cfg, rec, latest + 1, b)
                irow[io + H_B] = b
                latest = b
            irow[io + H_OFF] = t - latest * period
            for w in range(nw):
                if not _same_range(cfg, rec, t, latest_t, w):
                    wo = woff + w * W_SIZE
                    lo = _start(cfg, rec, t, w)
                    row[wo + W_LO] = lo
                    window_from_ring(row, irow, cfg, rec, wo, lo, b)
        else:
            if b < _kept_from(cfg, rec, latest, latest_t):
                write_absent(out, flags, cfg, rec, i)
                return
            in_order = False
    insert(row, irow, cfg, rec, mv, b % n, float(off), v)
    for w in range(nw):
        wo = woff + w * W_SIZE
        if b >= row[wo + W_LO]:
            add_to_window(row, wo, b, v)
    for w in range(nw):
        wo = woff + w * W_SIZE
        if in_order:
            _features(row, irow, cfg, rec, mv, latest, np.int64(row[wo + W_LO]), b, wo, w, out, flags, i)
        else:
            lo = _start(cfg, rec, t, w)
            if cfg[rec + R_MODE] == 0:
                hi = lo + cfg[rec + R_WIN + w] - 1
            else:
                hi = b
            kept = _kept_from(cfg, rec, latest, latest * period + irow[io + H_OFF])
            if lo < kept:
                lo = kept
            _features(row, irow, cfg, rec, mv, latest, lo, hi, -1, w, out, flags, i)


@njit(cache=True, nogil=True)
def _read(row, irow, cfg, rec, mv, t, mode, out, flags, i):
    io = cfg[rec + R_IOFF]
    latest = irow[io + H_B]
    if latest == NO_STATE:
        if mode == MODE_AGG:
            write_empty(out, flags, cfg, rec, mv, i)
        else:
            write_absent(out, flags, cfg, rec, i)
        return
    period = cfg[rec + R_PERIOD]
    latest_t = latest * period + irow[io + H_OFF]
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
            _features(row, irow, cfg, rec, mv, latest, lo, hi, -1, w, out, flags, i)
        elif _same_range(cfg, rec, t, latest_t, w):
            wo = woff + w * W_SIZE
            _features(row, irow, cfg, rec, mv, latest, np.int64(row[wo + W_LO]), latest, wo, w, out, flags, i)
        else:
            lo = _start(cfg, rec, t, w)
            if cfg[rec + R_MODE] == 0:
                hi = lo + size - 1
            else:
                hi = t // period
            if lo < kept:
                lo = kept
            _features(row, irow, cfg, rec, mv, latest, lo, hi, -1, w, out, flags, i)


@njit(cache=True, nogil=True, inline="always")
def _prefetch(state, istate, cfg, rec, key_slot, t):
    """Asks for the cache lines an event at time t of the key in `key_slot` will touch."""
    prefetch(istate, key_slot, cfg[rec + R_IOFF])
    o = cfg[rec + R_OFF]
    ring = o + cfg[rec + R_NW] * W_SIZE
    for x in range(o, ring, 8):
        prefetch(state, key_slot, x)
    prefetch(state, key_slot, ring + slot(cfg, rec, t // cfg[rec + R_PERIOD]))


@njit(cache=True, nogil=True)
def fixed_update(cfg, max_values, times, slots, values, valid, state, istate, out, flags, part, parts):
    """Aggregates a batch in arrival order and writes every event's features (arguments as in
    `sliding_update`)."""
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
def fixed_read(cfg, max_values, times, slots, mode, state, istate, out, flags):
    """Writes the features each event's key has at the event's time, changing nothing (arguments
    as in `sliding_read`)."""
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
