"""The kernels' outputs: an aggregator's features of an event, from a window's base statistics.

`out[f, i]` is feature f of event i and `flags[f, i]` says ABSENT (the event gets no such feature:
it came too late) or INT (a capped value equal to an int `max_value`). Callers pass `flags`
zeroed: only these marks are written. Feature `a * nw + w` of an aggregator (from its first output
row) is its aggregation a over its window w.
"""

import math

import numpy as np

from .buckets import INF, aggregator, newest_last, progressive, scan
from .jit import jit
from .layout import ABSENT, INT, R_CAP, R_CAP_INT, R_NW, W_CNT, W_FB, W_MAX, W_MIN, W_SIZE, W_SQR, W_SUM


@jit(inline=True)
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
    if code == 8:
        # as the reference reports it, negative when rounding made it so (near-equal values)
        return var
    if var < 0.0:
        # where the reference would fail on sqrt
        var = 0.0
    return math.sqrt(var)


@jit(inline=True)
def write_window(out, cfg, ag, w, i, cnt, sm, sq, mn, mx, first, last):
    """Writes event i's features of window w from the window's base statistics."""
    for a in range(ag.n_aggs):
        out[ag.out_row + a * ag.nw + w, i] = finish(cfg[ag.codes + a], cnt, sm, sq, mn, mx, first, last)


@jit
def write(out, cfg, rec, w, i, cnt, sm, sq, mn, mx, first, last):
    """`write_window`, compiled once for the rarer paths."""
    write_window(out, cfg, aggregator(cfg, rec), w, i, cnt, sm, sq, mn, mx, first, last)


@jit
def write_absent(out, flags, cfg, rec, i):
    """The event gets none of the aggregator's features."""
    ag = aggregator(cfg, rec)
    for f in range(ag.out_row, ag.out_row + ag.n_aggs * ag.nw):
        out[f, i] = np.nan
        flags[f, i] = ABSENT


@jit
def write_capped(out, flags, cfg, rec, mv, w, i, cnt, cnt_c, sm, sm_c, sq, sq_c, mn, mx, first, last):
    """Writes capped features: additive values as summed by `progressive` (an int `max_value`
    where the last step capped), min as min(max_value, min), max/first/last of capped values."""
    ag = aggregator(cfg, rec)
    as_int = cfg[rec + R_CAP_INT] == 1
    for a in range(ag.n_aggs):
        f = ag.out_row + a * ag.nw + w
        code = cfg[ag.codes + a]
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
        if flag != 0:
            flags[f, i] = flag


@jit
def capped_features(state, istate, k, cfg, rec, mv, w, i, lo, hi, out, flags):
    """Writes window w's capped features over buckets lo..hi."""
    if hi < lo:
        cnt, sm, sq, mn, mx, first, last = 0.0, 0.0, 0.0, INF, -INF, np.nan, np.nan
    else:
        cnt, sm, sq, mn, mx, first, last, _ = scan(state, istate, k, cfg, rec, lo, hi)
    ag = aggregator(cfg, rec)
    cnt, cnt_c = progressive(state, istate, k, cfg, rec, ag.o_cnt, lo, hi, mv)
    sm_c = False
    sq_c = False
    if ag.o_sum >= 0:
        sm, sm_c = progressive(state, istate, k, cfg, rec, ag.o_sum, lo, hi, mv)
    if ag.o_sqr >= 0:
        sq, sq_c = progressive(state, istate, k, cfg, rec, ag.o_sqr, lo, hi, mv)
    write_capped(out, flags, cfg, rec, mv, w, i, cnt, cnt_c, sm, sm_c, sq, sq_c, mn, mx, first, last)


@jit
def features(state, istate, k, cfg, rec, mv, w, i, lo, hi, out, flags):
    """Writes window w's features over buckets lo..hi, from the ring."""
    if cfg[rec + R_CAP] == 1:
        capped_features(state, istate, k, cfg, rec, mv, w, i, lo, hi, out, flags)
    elif hi < lo:
        write(out, cfg, rec, w, i, 0.0, 0.0, 0.0, INF, -INF, np.nan, np.nan)
    else:
        cnt, sm, sq, mn, mx, first, last, _ = scan(state, istate, k, cfg, rec, lo, hi)
        write(out, cfg, rec, w, i, cnt, sm, sq, mn, mx, first, last)


@jit
def write_empty(state, istate, cfg, rec, mv, out, flags, i):
    """Features of a key that has nothing aggregated yet (every window over no bucket)."""
    for w in range(cfg[rec + R_NW]):
        features(state, istate, 0, cfg, rec, mv, w, i, 1, 0, out, flags)


@jit(inline=True)
def running_features(state, istate, k, cfg, ag, w, i, latest, j_latest, depth, out):
    """Writes window w's features at the key's latest bucket (ring slot j_latest) from its running
    aggregate; its last is that of the newest of its `depth` latest buckets holding one."""
    wo = ag.woff + w * W_SIZE
    cnt = state[k, wo + W_CNT]
    first = np.nan
    if ag.o_first_at >= 0:
        fb = state[k, wo + W_FB]
        if fb < INF:
            jf = j_latest - (latest - np.int64(fb))
            if jf < 0:
                jf += ag.n
            first = state[k, ag.o_first + jf * ag.stride]
    last = np.nan
    if ag.o_last_at >= 0:
        last = newest_last(state, istate, k, ag, j_latest, depth)
    sm = state[k, wo + W_SUM]
    sq = state[k, wo + W_SQR]
    write_window(out, cfg, ag, w, i, cnt, sm, sq, state[k, wo + W_MIN], state[k, wo + W_MAX], first, last)
