"""Period buckets: the layout of an aggregator's state and the loops over its buckets.

An aggregator is described by a record of int64s in the kernels' `cfg` array (`R_*` in
`storey.kernels.layout`) and keeps, per key, a block of float64s in its row of the `state` array:

    header (4)      latest bucket B (NaN: no state yet), latest time's offset in B (ns),
                    first bucket the key ever had, unused
    rings (N each)  one ring of N period buckets per base statistic (bucket b at slot b mod N):
                    count, sum, sqr, min, max, first (time offset, value), last (time offset, value)
    windows (8 each) per window, the running aggregate of the buckets it covers:
                    count, sum, sqr, min, max, oldest bucket holding a first candidate, lo, unused

Empty buckets hold count = sum = sqr = 0, min = +inf, max = -inf, first offset = +inf, last
offset = -inf and NaN values. NaN values are counted and summed; min/max/first/last skip them.

Outputs: `out[f, i]` is feature f of event i and `flags[f, i]` says ABSENT (the event gets no
such feature: it came too late) or INT (a capped value equal to an int `max_value`).
"""

import math

import numpy as np
from numba import njit

from .layout import (
    ABSENT,
    INT,
    K_CNT,
    K_FOFF,
    K_FVAL,
    K_LOFF,
    K_LVAL,
    K_MAX,
    K_MIN,
    K_SQR,
    K_SUM,
    R_CAP,
    R_CAP_INT,
    R_N,
    R_NA,
    R_NW,
    R_OUT,
    R_RINGS,
    R_WIN,
    W_CNT,
    W_FB,
    W_MAX,
    W_MIN,
    W_SQR,
    W_SUM,
)

INF = np.inf


@njit(cache=True, nogil=True)
def clear_bucket(row, cfg, rec, b):
    n = cfg[rec + R_N]
    j = b % n
    rings = rec + R_RINGS
    row[cfg[rings + K_CNT] + j] = 0.0
    o = cfg[rings + K_SUM]
    if o >= 0:
        row[o + j] = 0.0
    o = cfg[rings + K_SQR]
    if o >= 0:
        row[o + j] = 0.0
    o = cfg[rings + K_MIN]
    if o >= 0:
        row[o + j] = INF
    o = cfg[rings + K_MAX]
    if o >= 0:
        row[o + j] = -INF
    o = cfg[rings + K_FOFF]
    if o >= 0:
        row[o + j] = INF
        row[cfg[rings + K_FVAL] + j] = np.nan
    o = cfg[rings + K_LOFF]
    if o >= 0:
        row[o + j] = -INF
        row[cfg[rings + K_LVAL] + j] = np.nan


@njit(cache=True, nogil=True)
def clear_buckets(row, cfg, rec, lo, hi):
    """Empties buckets lo..hi (at most one turn of the ring)."""
    n = cfg[rec + R_N]
    if hi - lo + 1 > n:
        lo = hi - n + 1
    for b in range(lo, hi + 1):
        clear_bucket(row, cfg, rec, b)


@njit(cache=True, nogil=True)
def reset_window(row, wo):
    row[wo + W_CNT] = 0.0
    row[wo + W_SUM] = 0.0
    row[wo + W_SQR] = 0.0
    row[wo + W_MIN] = INF
    row[wo + W_MAX] = -INF
    row[wo + W_FB] = INF


@njit(cache=True, nogil=True)
def capped(x, cap, mv):
    if cap and x > mv:
        return mv
    return x


@njit(cache=True, nogil=True)
def insert(row, cfg, rec, mv, b, off, v):
    """Adds value v, at time offset `off` (ns) into bucket b, to the bucket's statistics."""
    n = cfg[rec + R_N]
    j = b % n
    rings = rec + R_RINGS
    cap = cfg[rec + R_CAP] == 1
    o = cfg[rings + K_CNT]
    row[o + j] = capped(row[o + j] + 1.0, cap, mv)
    o = cfg[rings + K_SUM]
    if o >= 0:
        row[o + j] = capped(row[o + j] + v, cap, mv)
    o = cfg[rings + K_SQR]
    if o >= 0:
        row[o + j] = capped(row[o + j] + v * v, cap, mv)
    if v != v:
        return
    vc = capped(v, cap, mv)
    o = cfg[rings + K_MIN]
    if o >= 0 and v < row[o + j]:
        row[o + j] = v
    o = cfg[rings + K_MAX]
    if o >= 0 and vc > row[o + j]:
        row[o + j] = vc
    o = cfg[rings + K_FOFF]
    if o >= 0 and off < row[o + j]:
        row[o + j] = off
        row[cfg[rings + K_FVAL] + j] = vc
    o = cfg[rings + K_LOFF]
    if o >= 0 and off >= row[o + j]:
        row[o + j] = off
        row[cfg[rings + K_LVAL] + j] = vc


@njit(cache=True, nogil=True)
def add_to_window(row, cfg, rec, wo, b, v):
    """Adds value v (in bucket b) to a window's running aggregate."""
    row[wo + W_CNT] += 1.0
    row[wo + W_SUM] += v
    row[wo + W_SQR] += v * v
    if v == v:
        if v < row[wo + W_MIN]:
            row[wo + W_MIN] = v
        if v > row[wo + W_MAX]:
            row[wo + W_MAX] = v
        if b < row[wo + W_FB]:
            row[wo + W_FB] = b


@njit(cache=True, nogil=True)
def scan(row, cfg, rec, lo, hi):
    """The aggregate of buckets lo..hi (all kept): count, sum, sqr, min, max, first, last."""
    n = cfg[rec + R_N]
    rings = rec + R_RINGS
    oc = cfg[rings + K_CNT]
    os_ = cfg[rings + K_SUM]
    oq = cfg[rings + K_SQR]
    omin = cfg[rings + K_MIN]
    omax = cfg[rings + K_MAX]
    of = cfg[rings + K_FOFF]
    ol = cfg[rings + K_LOFF]
    cnt = 0.0
    sm = 0.0
    sq = 0.0
    mn = INF
    mx = -INF
    first = np.nan
    last = np.nan
    have_last = False
    for b in range(hi, lo - 1, -1):
        j = b % n
        cnt += row[oc + j]
        if os_ >= 0:
            sm += row[os_ + j]
        if oq >= 0:
            sq += row[oq + j]
        if omin >= 0 and row[omin + j] < mn:
            mn = row[omin + j]
        if omax >= 0 and row[omax + j] > mx:
            mx = row[omax + j]
        if of >= 0 and row[of + j] < INF:
            first = row[cfg[rings + K_FVAL] + j]
        if ol >= 0 and not have_last and row[ol + j] > -INF:
            last = row[cfg[rings + K_LVAL] + j]
            have_last = True
    return cnt, sm, sq, mn, mx, first, last


@njit(cache=True, nogil=True)
def window_from_ring(row, cfg, rec, wo, lo, hi):
    """Recomputes a window's running aggregate from its buckets lo..hi."""
    reset_window(row, wo)
    if hi < lo:
        return
    cnt, sm, sq, mn, mx, first, last = scan(row, cfg, rec, lo, hi)
    row[wo + W_CNT] = cnt
    row[wo + W_SUM] = sm
    row[wo + W_SQR] = sq
    row[wo + W_MIN] = mn
    row[wo + W_MAX] = mx
    of = cfg[rec + R_RINGS + K_FOFF]
    if of >= 0:
        n = cfg[rec + R_N]
        for b in range(lo, hi + 1):
            if row[of + b % n] < INF:
                row[wo + W_FB] = b
                break


@njit(cache=True, nogil=True)
def newest_last(row, cfg, rec, lo, hi):
    """The last value of the newest bucket in lo..hi that has one (NaN if none)."""
    ol = cfg[rec + R_RINGS + K_LOFF]
    n = cfg[rec + R_N]
    for b in range(hi, lo - 1, -1):
        j = b % n
        if row[ol + j] > -INF:
            return row[cfg[rec + R_RINGS + K_LVAL] + j]
    return np.nan


@njit(cache=True, nogil=True)
def progressive(row, o, n, lo, hi, mv):
    """Sum of buckets hi down to lo capped at mv after each step, as the reference caps window
    values; returns the value and whether the last step capped it."""
    total = 0.0
    was_capped = False
    for b in range(hi, lo - 1, -1):
        s = total + row[o + b % n]
        if s > mv:
            total = mv
            was_capped = True
        else:
            total = s
            was_capped = False
    return total, was_capped


@njit(cache=True, nogil=True)
def finish(code, cnt, sm, sq, mn, mx, first, last):
    """An aggregation's value from the base statistics of a window (codes as in the registry)."""
    if code == 0:
        return cnt
    if code == 1:
        return sm
    if code == 2:
        return sq
    if code == 3:
        if cnt == 0.0:
            return np.nan
        return sm / cnt
    if code == 4:
        return mn if mn != INF else np.nan
    if code == 5:
        return mx if mx != -INF else np.nan
    if code == 6:
        return first
    if code == 7:
        return last
    if cnt < 2.0:
        return np.nan
    var = (cnt * sq - sm * sm) / (cnt * (cnt - 1.0))
    if var < 0.0:
        # rounding made it negative (many equal values): the reference would fail on sqrt
        var = 0.0
    if code == 8:
        return var
    return math.sqrt(var)


@njit(cache=True, nogil=True)
def write(out, flags, cfg, rec, w, i, cnt, sm, sq, mn, mx, first, last):
    """Writes an event's features of window w from the window's base statistics."""
    nw = cfg[rec + R_NW]
    na = cfg[rec + R_NA]
    base = cfg[rec + R_OUT]
    codes = rec + R_WIN + nw
    for a in range(na):
        f = base + a * nw + w
        out[f, i] = finish(cfg[codes + a], cnt, sm, sq, mn, mx, first, last)
        flags[f, i] = 0


@njit(cache=True, nogil=True)
def write_absent(out, flags, cfg, rec, i):
    """The event gets none of the aggregator's features."""
    nw = cfg[rec + R_NW]
    na = cfg[rec + R_NA]
    base = cfg[rec + R_OUT]
    for f in range(base, base + na * nw):
        out[f, i] = np.nan
        flags[f, i] = ABSENT


@njit(cache=True, nogil=True)
def write_empty(out, flags, cfg, rec, mv, i):
    """Features of a key that has nothing aggregated yet."""
    nw = cfg[rec + R_NW]
    cap = cfg[rec + R_CAP] == 1
    for w in range(nw):
        if cap:
            write_capped(
                out, flags, cfg, rec, mv, w, i, 0.0, False, 0.0, False, 0.0, False, INF, -INF, np.nan, np.nan
            )
        else:
            write(out, flags, cfg, rec, w, i, 0.0, 0.0, 0.0, INF, -INF, np.nan, np.nan)


@njit(cache=True, nogil=True)
def write_capped(out, flags, cfg, rec, mv, w, i, cnt, cnt_c, sm, sm_c, sq, sq_c, mn, mx, first, last):
    """Writes capped features: additive values as summed by `progressive` (an int `max_value`
    where the last step capped), min as min(max_value, min), max/first/last of capped values."""
    nw = cfg[rec + R_NW]
    na = cfg[rec + R_NA]
    base = cfg[rec + R_OUT]
    codes = rec + R_WIN + nw
    as_int = cfg[rec + R_CAP_INT] == 1
    for a in range(na):
        f = base + a * nw + w
        code = cfg[codes + a]
        flag = 0
        if code == 0:
            value = cnt
            if cnt_c and as_int:
                flag = INT
        elif code == 1:
            value = sm
            if sm_c and as_int:
                flag = INT
        elif code == 2:
            value = sq
            if sq_c and as_int:
                flag = INT
        elif code == 4:
            if mn < mv:
                value = mn
            else:
                value = mv
                if as_int:
                    flag = INT
        elif code == 5:
            value = mx
        else:
            value = finish(code, cnt, sm, sq, mn, mx, first, last)
        out[f, i] = value
        flags[f, i] = flag
