"""Period buckets: the layout of an aggregator's state and the loops over its buckets.

An aggregator is described by a record of int64s in the kernels' `cfg` array (`R_*` in
`storey.kernels.layout`, decoded once by `aggregator`) and keeps, per key, a block in its row of
`istate` (int64s) and one in its row of `state` (float64s):

    istate: header (4)     latest bucket B (NO_STATE before the key's first value), offset of the
                           latest time in B (ns), first bucket the key ever had, ring slot of B
            bitmap         one bit per ring slot: set when the slot holds a bucket of this turn
    state:  windows (8 each) per window, the running aggregate of the buckets it covers:
                           count, sum, sqr, min, max, oldest bucket holding a first candidate, and
                           for fixed windows the first bucket of its range and the one after it
            ring (N buckets) bucket b at slot b mod N, its statistics side by side (one cache
                           line): count, then those kept of sum, sqr, min, max, first (time
                           offset, value), last (time offset, value)

A slot whose bit is clear is an empty bucket whatever it holds: nothing is cleared when buckets
leave the ring, and loops over buckets skip empty ones without touching their memory. NaN values
are counted and summed; min/max/first/last skip them. Ring positions are passed around as `j`
(the slot) and `s` (its offset, slot * stride). The functions take the 2-D `state`/`istate` and
the key's row `k` (a row view would cost an atomic reference count each time it is made).

The pieces of the kernels' per-event path (a value into its bucket and into a window, a bucket
leaving one) are inlined; the loops over many buckets serve the rarer paths (late events, reads
at other times, windows recomputed from their buckets, capped values) and stay separate
functions, which keeps compilation short.
"""

from collections import namedtuple

import numpy as np

from .jit import jit, prefetch
from .layout import (
    H_B,
    H_J,
    HEADER,
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
    R_IOFF,
    R_MODE,
    R_N,
    R_NA,
    R_NW,
    R_OUT,
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

INF = np.inf
# how many events ahead the kernels ask for the state they will touch
AHEAD = 12
# limits of `windows_lcm`: a span of buckets no key ever steps over, and none
NEVER = 1 << 40
NO_LIMIT = 2**63 - 1

# An aggregator's record, decoded: `rec` (where it starts in cfg), bucket length (ns), ring size,
# number of windows, where its blocks start (`io` in istate, `words` its bitmap, `woff` its
# windows and `ring` its buckets in state), floats per bucket; `o_*`: the place of each statistic
# in a bucket (-1: not kept; first and last keep a time offset `_at` and a value); whether
# max_value caps it, its row in `values`, number of aggregations, first output row, where its
# window lengths (`wins`) and aggregation codes (`codes`) start in cfg, the shortest window (in
# buckets), whether it keeps min, max, first or last, and the fixed windows' mode (R_MODE).
Aggregator = namedtuple(
    "Aggregator",
    "rec period n nw io words woff ring stride o_cnt o_sum o_sqr o_min o_max o_first_at o_first "
    "o_last_at o_last capped value_row n_aggs out_row wins codes smallest extremes mode",
)


@jit(inline=True)
def aggregator(cfg, rec):
    """The record of the aggregator at cfg[rec], decoded (the offsets prologue of every loop)."""
    nw = cfg[rec + R_NW]
    woff = cfg[rec + R_WOFF]
    rings = rec + R_RINGS
    o_min = cfg[rings + K_MIN]
    o_max = cfg[rings + K_MAX]
    o_first_at = cfg[rings + K_FOFF]
    o_last_at = cfg[rings + K_LOFF]
    return Aggregator(
        rec,
        cfg[rec + R_PERIOD],
        cfg[rec + R_N],
        nw,
        cfg[rec + R_IOFF],
        cfg[rec + R_IOFF] + HEADER,
        woff,
        woff + nw * W_SIZE,
        cfg[rec + R_STRIDE],
        cfg[rings + K_CNT],
        cfg[rings + K_SUM],
        cfg[rings + K_SQR],
        o_min,
        o_max,
        o_first_at,
        cfg[rings + K_FVAL],
        o_last_at,
        cfg[rings + K_LVAL],
        cfg[rec + R_CAP] == 1,
        cfg[rec + R_VALUE],
        cfg[rec + R_NA],
        cfg[rec + R_OUT],
        rec + R_WIN,
        rec + R_WIN + nw,
        cfg[rec + R_WIN],
        o_min >= 0 or o_max >= 0 or o_first_at >= 0 or o_last_at >= 0,
        cfg[rec + R_MODE],
    )


@jit(inline=True)
def prefetch_ahead(state, istate, cfg, ag, times, slots, i, part, parts, leaving):
    """Asks for the lines the event AHEAD events on will touch: its key's header and bitmap, its
    windows, its bucket and (`leaving`) the buckets that would leave its windows."""
    ahead = i + AHEAD
    if ahead >= times.shape[0]:
        return
    ka = slots[ahead]
    if ka < 0 or not (parts == 1 or ka % parts == part):
        return
    prefetch(istate, ka, ag.io)
    for x in range(ag.woff, ag.ring, 8):
        prefetch(state, ka, x)
    ja = (times[ahead] // ag.period) % ag.n
    prefetch(state, ka, ag.ring + ja * ag.stride)
    if leaving:
        for w in range(ag.nw):
            jd = ja - cfg[ag.wins + w]
            if jd < 0:
                jd += ag.n
            prefetch(state, ka, ag.ring + jd * ag.stride)


# the bitmap keeps 32 slots per int64 word, so that every bit operation stays positive (the same in
# the compiled kernels and their pure-Python twin)
_DE_BRUIJN = np.array(
    [0, 1, 28, 2, 29, 14, 24, 3, 30, 22, 20, 15, 25, 17, 4, 8]
    + [31, 27, 13, 23, 21, 19, 16, 7, 26, 12, 18, 6, 11, 5, 10, 9],
    dtype=np.int64,
)


@jit(inline=True)
def bit_index(low):
    """The index of the only bit set in `low` (< 2**32)."""
    return _DE_BRUIJN[((low * 0x077CB531) & 0xFFFFFFFF) >> 27]


@jit(inline=True)
def filled(istate, k, words, j):
    """Whether ring slot j holds a bucket (`words`: where the key's bitmap starts in istate)."""
    return (istate[k, words + (j >> 5)] >> (j & 31)) & 1 == 1


@jit(inline=True)
def clear_slots(istate, k, words, n, j, count):
    """Marks `count` ring slots empty, from slot j on (wrapping around the n slots)."""
    if count >= n:
        for word in range((n + 31) >> 5):
            istate[k, words + word] = 0
        return
    for _ in range(count):
        istate[k, words + (j >> 5)] &= ~(np.int64(1) << (j & 31))
        j += 1
        if j == n:
            j = 0


@jit(inline=True)
def chunk(istate, k, words, n, j, left):
    """For the slots from j on: how many of the next `left` share j's bitmap word (up to the
    word's end or the ring's end), and their bits (bit x: slot j + x is filled)."""
    bit = j & 31
    span = 32 - bit
    if n - j < span:
        span = n - j
    if left < span:
        span = left
    bits = (istate[k, words + (j >> 5)] >> bit) & ((np.int64(1) << span) - 1)
    return span, bits


@jit(inline=True)
def slot_of(ag, j_latest, latest, b):
    """The ring slot of bucket b (in the ring), the latest bucket being in slot j_latest."""
    j = j_latest - (latest - b)
    if j < 0:
        j += ag.n
    return j


@jit(inline=True)
def windows_lcm(cfg, rec, limit):
    """The windows' least common multiple in buckets, or `limit` once it passes it."""
    lcm = np.int64(1)
    for w in range(cfg[rec + R_NW]):
        size = cfg[rec + R_WIN + w]
        a, b = lcm, size
        while b != 0:
            a, b = b, a % b
        lcm = lcm // a * size
        if lcm > limit:
            return limit
    return lcm


@jit(inline=True)
def move_latest(istate, k, io, n, new):
    """Moves the key's latest bucket forward to `new` (`io`: the aggregator's block in istate, n:
    its ring size): the ring slots after the old latest one, up to `new`'s, start empty. Returns
    the ring slot of `new`."""
    d = new - istate[k, io + H_B]
    j_old = istate[k, io + H_J]
    j = j_old + 1
    if j == n:
        j = 0
    clear_slots(istate, k, io + HEADER, n, j, d)
    if d < n:
        j = j_old + d
        if j >= n:
            j -= n
    else:
        j = new % n
    istate[k, io + H_B] = new
    istate[k, io + H_J] = j
    return j


@jit(inline=True)
def bucket_clear(state, k, ag, s):
    """An empty bucket at slot offset s (before its first value)."""
    state[k, ag.o_cnt + s] = 0.0
    if ag.o_sum >= 0:
        state[k, ag.o_sum + s] = 0.0
    if ag.o_sqr >= 0:
        state[k, ag.o_sqr + s] = 0.0
    if ag.o_min >= 0:
        state[k, ag.o_min + s] = INF
    if ag.o_max >= 0:
        state[k, ag.o_max + s] = -INF
    if ag.o_first_at >= 0:
        state[k, ag.o_first_at + s] = INF
        state[k, ag.o_first + s] = np.nan
    if ag.o_last_at >= 0:
        state[k, ag.o_last_at + s] = -INF
        state[k, ag.o_last + s] = np.nan


@jit(inline=True)
def bucket_take(state, istate, k, ag, j):
    """The slot offset of the bucket in ring slot j, emptied first if the slot held none."""
    s = j * ag.stride
    if not filled(istate, k, ag.words, j):
        bucket_clear(state, k, ag, s)
        istate[k, ag.words + (j >> 5)] |= np.int64(1) << (j & 31)
    return s


@jit(inline=True)
def bucket_add(state, istate, k, ag, j, t, b, v):
    """Adds value v, at time t in bucket b, into the bucket in ring slot j."""
    s = bucket_take(state, istate, k, ag, j)
    state[k, ag.o_cnt + s] += 1.0
    if ag.o_sum >= 0:
        state[k, ag.o_sum + s] += v
    if ag.o_sqr >= 0:
        state[k, ag.o_sqr + s] += v * v
    if v == v:
        # min and max without a branch on the values
        if ag.o_min >= 0:
            state[k, ag.o_min + s] = min(v, state[k, ag.o_min + s])
        if ag.o_max >= 0:
            state[k, ag.o_max + s] = max(v, state[k, ag.o_max + s])
        if ag.o_first_at >= 0 or ag.o_last_at >= 0:
            off = float(t - b * ag.period)
            if ag.o_first_at >= 0 and off < state[k, ag.o_first_at + s]:
                state[k, ag.o_first_at + s] = off
                state[k, ag.o_first + s] = v
            if ag.o_last_at >= 0 and off >= state[k, ag.o_last_at + s]:
                state[k, ag.o_last_at + s] = off
                state[k, ag.o_last + s] = v


@jit(inline=True)
def capped(x, mv):
    """x capped at max_value mv."""
    return mv if x > mv else x


@jit
def insert_capped(state, istate, k, cfg, rec, mv, j, off, v):
    """Adds value v, at time offset `off` (ns), into the bucket in ring slot j, capping the
    bucket's statistics at `mv` as the reference does."""
    ag = aggregator(cfg, rec)
    s = bucket_take(state, istate, k, ag, j)
    state[k, ag.o_cnt + s] = capped(state[k, ag.o_cnt + s] + 1.0, mv)
    if ag.o_sum >= 0:
        state[k, ag.o_sum + s] = capped(state[k, ag.o_sum + s] + v, mv)
    if ag.o_sqr >= 0:
        state[k, ag.o_sqr + s] = capped(state[k, ag.o_sqr + s] + v * v, mv)
    if v != v:
        return
    vc = capped(v, mv)
    if ag.o_min >= 0 and v < state[k, ag.o_min + s]:
        state[k, ag.o_min + s] = v
    if ag.o_max >= 0 and vc > state[k, ag.o_max + s]:
        state[k, ag.o_max + s] = vc
    if ag.o_first_at >= 0 and off < state[k, ag.o_first_at + s]:
        state[k, ag.o_first_at + s] = off
        state[k, ag.o_first + s] = vc
    if ag.o_last_at >= 0 and off >= state[k, ag.o_last_at + s]:
        state[k, ag.o_last_at + s] = off
        state[k, ag.o_last + s] = vc


@jit(inline=True)
def reset_window(state, k, wo):
    """An empty running aggregate at window block wo."""
    state[k, wo + W_CNT] = 0.0
    state[k, wo + W_SUM] = 0.0
    state[k, wo + W_SQR] = 0.0
    state[k, wo + W_MIN] = INF
    state[k, wo + W_MAX] = -INF
    state[k, wo + W_FB] = INF


@jit(inline=True)
def window_add(state, k, ag, wo, b, v):
    """Adds value v of bucket b to the running aggregate at window block wo."""
    state[k, wo + W_CNT] += 1.0
    if ag.o_sum >= 0:
        state[k, wo + W_SUM] += v
    if ag.o_sqr >= 0:
        state[k, wo + W_SQR] += v * v
    if v == v:
        if ag.o_min >= 0:
            state[k, wo + W_MIN] = min(v, state[k, wo + W_MIN])
        if ag.o_max >= 0:
            state[k, wo + W_MAX] = max(v, state[k, wo + W_MAX])
        if ag.o_first_at >= 0 and b < state[k, wo + W_FB]:
            state[k, wo + W_FB] = b


@jit(inline=True)
def window_subtract(state, k, ag, wo, s):
    """Subtracts the sums of the bucket at slot offset s from the running aggregate at window
    block wo, as the reference's running sums do; returns the bucket's sum (0.0 if not kept)."""
    state[k, wo + W_CNT] -= state[k, ag.o_cnt + s]
    leaving = 0.0
    if ag.o_sum >= 0:
        leaving = state[k, ag.o_sum + s]
        state[k, wo + W_SUM] -= leaving
    if ag.o_sqr >= 0:
        state[k, wo + W_SQR] -= state[k, ag.o_sqr + s]
    return leaving


@jit(inline=True)
def window_subtract_slots(state, istate, k, ag, wo, j, count):
    """Subtracts the buckets of `count` ring slots from slot j on (oldest first) from the running
    aggregate at window block wo."""
    for _ in range(count):
        if filled(istate, k, ag.words, j):
            window_subtract(state, k, ag, wo, j * ag.stride)
        j += 1
        if j == ag.n:
            j = 0


@jit(inline=True)
def window_store(state, k, wo, cnt, sm, sq, mn, mx, first_bucket):
    """Sets the running aggregate at window block wo."""
    state[k, wo + W_CNT] = cnt
    state[k, wo + W_SUM] = sm
    state[k, wo + W_SQR] = sq
    state[k, wo + W_MIN] = mn
    state[k, wo + W_MAX] = mx
    state[k, wo + W_FB] = first_bucket


@jit
def scan(state, istate, k, cfg, rec, lo, hi):
    """The aggregate of buckets lo..hi (within the ring): count, sum, sqr, min, max, first, last,
    and the oldest bucket holding a first candidate (+inf if none)."""
    ag = aggregator(cfg, rec)
    cnt = 0.0
    sm = 0.0
    sq = 0.0
    mn = INF
    mx = -INF
    first = np.nan
    first_bucket = INF
    last = np.nan
    b = lo
    j = lo % ag.n
    while b <= hi:
        span, bits = chunk(istate, k, ag.words, ag.n, j, hi - b + 1)
        while bits != 0:
            low = bits & -bits
            bits ^= low
            x = bit_index(low)
            s = (j + x) * ag.stride
            cnt += state[k, ag.o_cnt + s]
            if ag.o_sum >= 0:
                sm += state[k, ag.o_sum + s]
            if ag.o_sqr >= 0:
                sq += state[k, ag.o_sqr + s]
            if ag.o_min >= 0 and state[k, ag.o_min + s] < mn:
                mn = state[k, ag.o_min + s]
            if ag.o_max >= 0 and state[k, ag.o_max + s] > mx:
                mx = state[k, ag.o_max + s]
            if ag.o_first_at >= 0 and first_bucket == INF and state[k, ag.o_first_at + s] < INF:
                first = state[k, ag.o_first + s]
                first_bucket = b + x
            if ag.o_last_at >= 0 and state[k, ag.o_last_at + s] > -INF:
                last = state[k, ag.o_last + s]
        b += span
        j += span
        if j == ag.n:
            j = 0
    return cnt, sm, sq, mn, mx, first, last, first_bucket


@jit
def window_from_ring(state, istate, k, cfg, rec, wo, lo, hi):
    """Recomputes a window's running aggregate from its buckets lo..hi."""
    reset_window(state, k, wo)
    if hi < lo:
        return
    cnt, sm, sq, mn, mx, _, _, first_bucket = scan(state, istate, k, cfg, rec, lo, hi)
    window_store(state, k, wo, cnt, sm, sq, mn, mx, first_bucket)


@jit(inline=True)
def reversed_bits(x):
    """The 32 low bits of x in reverse order (bit 0 becomes bit 31)."""
    x = ((x >> 1) & 0x55555555) | ((x & 0x55555555) << 1)
    x = ((x >> 2) & 0x33333333) | ((x & 0x33333333) << 2)
    x = ((x >> 4) & 0x0F0F0F0F) | ((x & 0x0F0F0F0F) << 4)
    x = ((x >> 8) & 0x00FF00FF) | ((x & 0x00FF00FF) << 8)
    return ((x >> 16) & 0xFFFF) | ((x & 0xFFFF) << 16)


@jit
def windows_newest_first(state, istate, k, cfg, rec, latest, j):
    """Recomputes every window's running aggregate from its buckets up to `latest` (ring slot j),
    adding them up newest first as the reference does when it adds windows up again: one pass
    over the longest window, each (shorter) window taking the totals of its buckets on the way."""
    ag = aggregator(cfg, rec)
    cnt = 0.0
    sm = 0.0
    sq = 0.0
    mn = INF
    mx = -INF
    first_bucket = INF
    w = 0
    remaining = cfg[ag.wins + ag.nw - 1]
    top = latest
    while remaining > 0:
        low_slot = j & ~31
        if j - remaining + 1 > low_slot:
            low_slot = j - remaining + 1
        span = j - low_slot + 1
        bits = (istate[k, ag.words + (j >> 5)] >> (low_slot & 31)) & ((np.int64(1) << span) - 1)
        # bit y: slot j - y, bucket top - y
        bits = reversed_bits(bits) >> (32 - span)
        while bits != 0:
            low = bits & -bits
            bits ^= low
            y = bit_index(low)
            b = top - y
            while w < ag.nw and latest - cfg[ag.wins + w] >= b:
                window_store(state, k, ag.woff + w * W_SIZE, cnt, sm, sq, mn, mx, first_bucket)
                w += 1
            s = (j - y) * ag.stride
            cnt += state[k, ag.o_cnt + s]
            if ag.o_sum >= 0:
                sm += state[k, ag.o_sum + s]
            if ag.o_sqr >= 0:
                sq += state[k, ag.o_sqr + s]
            if ag.o_min >= 0:
                mn = min(mn, state[k, ag.o_min + s])
            if ag.o_max >= 0:
                mx = max(mx, state[k, ag.o_max + s])
            if ag.o_first_at >= 0 and state[k, ag.o_first_at + s] < INF:
                first_bucket = b
        remaining -= span
        top -= span
        j = low_slot - 1
        if j < 0:
            j = ag.n - 1
    while w < ag.nw:
        window_store(state, k, ag.woff + w * W_SIZE, cnt, sm, sq, mn, mx, first_bucket)
        w += 1


@jit
def extremes_from_ring(state, istate, k, cfg, rec, wo, lo, hi):
    """Recomputes a window's min, max and oldest bucket holding a first candidate (those kept)
    from its buckets lo..hi, its sums staying as they are."""
    ag = aggregator(cfg, rec)
    mn = INF
    mx = -INF
    first_bucket = INF
    b = lo
    j = lo % ag.n
    while b <= hi:
        span, bits = chunk(istate, k, ag.words, ag.n, j, hi - b + 1)
        while bits != 0:
            low = bits & -bits
            bits ^= low
            x = bit_index(low)
            s = (j + x) * ag.stride
            if ag.o_min >= 0:
                mn = min(mn, state[k, ag.o_min + s])
            if ag.o_max >= 0:
                mx = max(mx, state[k, ag.o_max + s])
            if ag.o_first_at >= 0 and first_bucket == INF and state[k, ag.o_first_at + s] < INF:
                first_bucket = b + x
        b += span
        j += span
        if j == ag.n:
            j = 0
    state[k, wo + W_MIN] = mn
    state[k, wo + W_MAX] = mx
    state[k, wo + W_FB] = first_bucket


@jit(inline=True)
def newest_last(state, istate, k, ag, j, count):
    """The last value of the newest bucket that has one among `count` ring slots from slot j
    down (NaN if none)."""
    for _ in range(count):
        if filled(istate, k, ag.words, j) and state[k, ag.o_last_at + j * ag.stride] > -INF:
            return state[k, ag.o_last + j * ag.stride]
        j -= 1
        if j < 0:
            j = ag.n - 1
    return np.nan


@jit
def progressive(state, istate, k, cfg, rec, o, lo, hi, mv):
    """Sum of the statistic at offset o of buckets hi down to lo (empty ones adding 0.0), capped
    at mv after each step as the reference caps window values; returns the value and whether the
    last step capped it."""
    ag = aggregator(cfg, rec)
    total = 0.0
    was_capped = False
    j = hi % ag.n
    for _ in range(hi - lo + 1):
        x = state[k, o + j * ag.stride] if filled(istate, k, ag.words, j) else 0.0
        s = total + x
        if s > mv:
            total = mv
            was_capped = True
        else:
            total = s
            was_capped = False
        j -= 1
        if j < 0:
            j = ag.n - 1
    return total, was_capped
