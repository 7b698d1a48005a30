"""Period buckets: the layout of an aggregator's state and the loops over its buckets.

An aggregator is described by a record of int64s in the kernels' `cfg` array (`R_*` in
`storey.kernels.layout`) and keeps, per key, a block in its row of `istate` (int64s) and one in
its row of `state` (float64s):

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

Outputs: `out[f, i]` is feature f of event i and `flags[f, i]` says ABSENT (the event gets no
such feature: it came too late) or INT (a capped value equal to an int `max_value`). Callers pass
`flags` zeroed: only these marks are written.

The per-event path of the kernels (`sliding`, `fixed`) is written out in their loops; the
functions here serve the rarer paths (late events, reads at other times, windows recomputed from
their buckets, capped values) and stay separate functions, which keeps compilation short.
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .jit import jit
from .layout import (
    ABSENT,
    H_B,
    H_J,
    HEADER,
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
    R_IOFF,
    R_N,
    R_NA,
    R_NW,
    R_OUT,
    R_RINGS,
    R_STRIDE,
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


@intrinsic
def prefetch(typingctx, array, i, j):
    """Asks the CPU to fetch array[i, j] into the cache (a hint; nothing else happens)."""
    sig = types.void(array, i, j)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        ary = context.make_array(array_type)(context, builder, args[0])
        index = [
            context.cast(builder, args[1], signature.args[1], types.intp),
            context.cast(builder, args[2], signature.args[2], types.intp),
        ]
        pointer = cgutils.get_item_pointer(context, builder, array_type, ary, index, wraparound=False)
        i32 = ir.IntType(32)
        byte_pointer = ir.IntType(8).as_pointer()
        pointer = builder.bitcast(pointer, byte_pointer)
        fnty = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # write access, keep in all cache levels, data
        builder.call(fn, [pointer, ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


def _no_prefetch(array, i, j):
    pass


# what the pure-Python twin of the kernels uses instead of the intrinsics
PYTHON_TWINS = {"prefetch": _no_prefetch}


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


@jit
def scan(state, istate, k, cfg, rec, lo, hi):
    """The aggregate of buckets lo..hi (within the ring): count, sum, sqr, min, max, first, last,
    and the oldest bucket holding a first candidate (+inf if none)."""
    n = cfg[rec + R_N]
    words = cfg[rec + R_IOFF] + HEADER
    stride = cfg[rec + R_STRIDE]
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
    first_bucket = INF
    last = np.nan
    b = lo
    j = lo % n
    while b <= hi:
        span, bits = chunk(istate, k, words, n, j, hi - b + 1)
        while bits != 0:
            low = bits & -bits
            bits ^= low
            x = bit_index(low)
            s = (j + x) * stride
            cnt += state[k, oc + s]
            if os_ >= 0:
                sm += state[k, os_ + s]
            if oq >= 0:
                sq += state[k, oq + s]
            if omin >= 0 and state[k, omin + s] < mn:
                mn = state[k, omin + s]
            if omax >= 0 and state[k, omax + s] > mx:
                mx = state[k, omax + s]
            if of >= 0 and first_bucket == INF and state[k, of + s] < INF:
                first = state[k, cfg[rings + K_FVAL] + s]
                first_bucket = b + x
            if ol >= 0 and state[k, ol + s] > -INF:
                last = state[k, cfg[rings + K_LVAL] + s]
        b += span
        j += span
        if j == n:
            j = 0
    return cnt, sm, sq, mn, mx, first, last, first_bucket


@jit(inline=True)
def reset_window(state, k, wo):
    state[k, wo + W_CNT] = 0.0
    state[k, wo + W_SUM] = 0.0
    state[k, wo + W_SQR] = 0.0
    state[k, wo + W_MIN] = INF
    state[k, wo + W_MAX] = -INF
    state[k, wo + W_FB] = INF


@jit
def window_from_ring(state, istate, k, cfg, rec, wo, lo, hi):
    """Recomputes a window's running aggregate from its buckets lo..hi."""
    reset_window(state, k, wo)
    if hi < lo:
        return
    cnt, sm, sq, mn, mx, _, _, first_bucket = scan(state, istate, k, cfg, rec, lo, hi)
    state[k, wo + W_CNT] = cnt
    state[k, wo + W_SUM] = sm
    state[k, wo + W_SQR] = sq
    state[k, wo + W_MIN] = mn
    state[k, wo + W_MAX] = mx
    state[k, wo + W_FB] = first_bucket


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
    n = cfg[rec + R_N]
    nw = cfg[rec + R_NW]
    woff = cfg[rec + R_WOFF]
    words = cfg[rec + R_IOFF] + HEADER
    stride = cfg[rec + R_STRIDE]
    rings = rec + R_RINGS
    oc = cfg[rings + K_CNT]
    os_ = cfg[rings + K_SUM]
    oq = cfg[rings + K_SQR]
    omin = cfg[rings + K_MIN]
    omax = cfg[rings + K_MAX]
    of = cfg[rings + K_FOFF]
    cnt = 0.0
    sm = 0.0
    sq = 0.0
    mn = INF
    mx = -INF
    first_bucket = INF
    w = 0
    remaining = cfg[rec + R_WIN + nw - 1]
    top = latest
    while remaining > 0:
        low_slot = j & ~31
        if j - remaining + 1 > low_slot:
            low_slot = j - remaining + 1
        span = j - low_slot + 1
        bits = (istate[k, words + (j >> 5)] >> (low_slot & 31)) & ((np.int64(1) << span) - 1)
        # bit y: slot j - y, bucket top - y
        bits = reversed_bits(bits) >> (32 - span)
        while bits != 0:
            low = bits & -bits
            bits ^= low
            y = bit_index(low)
            b = top - y
            while w < nw and latest - cfg[rec + R_WIN + w] >= b:
                wo = woff + w * W_SIZE
                state[k, wo + W_CNT] = cnt
                state[k, wo + W_SUM] = sm
                state[k, wo + W_SQR] = sq
                state[k, wo + W_MIN] = mn
                state[k, wo + W_MAX] = mx
                state[k, wo + W_FB] = first_bucket
                w += 1
            s = (j - y) * stride
            cnt += state[k, oc + s]
            if os_ >= 0:
                sm += state[k, os_ + s]
            if oq >= 0:
                sq += state[k, oq + s]
            if omin >= 0:
                mn = min(mn, state[k, omin + s])
            if omax >= 0:
                mx = max(mx, state[k, omax + s])
            if of >= 0 and state[k, of + s] < INF:
                first_bucket = b
        remaining -= span
        top -= span
        j = low_slot - 1
        if j < 0:
            j = n - 1
    while w < nw:
        wo = woff + w * W_SIZE
        state[k, wo + W_CNT] = cnt
        state[k, wo + W_SUM] = sm
        state[k, wo + W_SQR] = sq
        state[k, wo + W_MIN] = mn
        state[k, wo + W_MAX] = mx
        state[k, wo + W_FB] = first_bucket
        w += 1


@jit
def extremes_from_ring(state, istate, k, cfg, rec, wo, lo, hi):
    """Recomputes a window's min, max and oldest bucket holding a first candidate (those kept)
    from its buckets lo..hi, its sums staying as they are."""
    n = cfg[rec + R_N]
    words = cfg[rec + R_IOFF] + HEADER
    stride = cfg[rec + R_STRIDE]
    rings = rec + R_RINGS
    omin = cfg[rings + K_MIN]
    omax = cfg[rings + K_MAX]
    of = cfg[rings + K_FOFF]
    mn = INF
    mx = -INF
    first_bucket = INF
    b = lo
    j = lo % n
    while b <= hi:
        span, bits = chunk(istate, k, words, n, j, hi - b + 1)
        while bits != 0:
            low = bits & -bits
            bits ^= low
            x = bit_index(low)
            s = (j + x) * stride
            if omin >= 0:
                mn = min(mn, state[k, omin + s])
            if omax >= 0:
                mx = max(mx, state[k, omax + s])
            if of >= 0 and first_bucket == INF and state[k, of + s] < INF:
                first_bucket = b + x
        b += span
        j += span
        if j == n:
            j = 0
    state[k, wo + W_MIN] = mn
    state[k, wo + W_MAX] = mx
    state[k, wo + W_FB] = first_bucket


@jit
def newest_last(state, istate, k, cfg, rec, lo, hi):
    """The last value of the newest bucket in lo..hi that has one (NaN if none)."""
    ol = cfg[rec + R_RINGS + K_LOFF]
    n = cfg[rec + R_N]
    words = cfg[rec + R_IOFF] + HEADER
    stride = cfg[rec + R_STRIDE]
    j = hi % n
    for _ in range(hi - lo + 1):
        if filled(istate, k, words, j):
            s = j * stride
            if state[k, ol + s] > -INF:
                return state[k, cfg[rec + R_RINGS + K_LVAL] + s]
        j -= 1
        if j < 0:
            j = n - 1
    return np.nan


@jit
def clear_bucket(state, k, cfg, rec, s):
    """An empty bucket at slot offset s (before its first value)."""
    rings = rec + R_RINGS
    state[k, cfg[rings + K_CNT] + s] = 0.0
    o = cfg[rings + K_SUM]
    if o >= 0:
        state[k, o + s] = 0.0
    o = cfg[rings + K_SQR]
    if o >= 0:
        state[k, o + s] = 0.0
    o = cfg[rings + K_MIN]
    if o >= 0:
        state[k, o + s] = INF
    o = cfg[rings + K_MAX]
    if o >= 0:
        state[k, o + s] = -INF
    o = cfg[rings + K_FOFF]
    if o >= 0:
        state[k, o + s] = INF
        state[k, cfg[rings + K_FVAL] + s] = np.nan
    o = cfg[rings + K_LOFF]
    if o >= 0:
        state[k, o + s] = -INF
        state[k, cfg[rings + K_LVAL] + s] = np.nan


@jit(inline=True)
def capped(x, mv):
    return mv if x > mv else x


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


@jit
def insert_capped(state, istate, k, cfg, rec, mv, j, off, v):
    """Adds value v, at time offset `off` (ns), into the bucket in ring slot j, capping the
    bucket's statistics at `mv` as the reference does."""
    s = j * cfg[rec + R_STRIDE]
    words = cfg[rec + R_IOFF] + HEADER
    rings = rec + R_RINGS
    if not filled(istate, k, words, j):
        clear_bucket(state, k, cfg, rec, s)
        istate[k, words + (j >> 5)] |= np.int64(1) << (j & 31)
    o = cfg[rings + K_CNT]
    state[k, o + s] = capped(state[k, o + s] + 1.0, mv)
    o = cfg[rings + K_SUM]
    if o >= 0:
        state[k, o + s] = capped(state[k, o + s] + v, mv)
    o = cfg[rings + K_SQR]
    if o >= 0:
        state[k, o + s] = capped(state[k, o + s] + v * v, mv)
    if v != v:
        return
    vc = capped(v, mv)
    o = cfg[rings + K_MIN]
    if o >= 0 and v < state[k, o + s]:
        state[k, o + s] = v
    o = cfg[rings + K_MAX]
    if o >= 0 and vc > state[k, o + s]:
        state[k, o + s] = vc
    o = cfg[rings + K_FOFF]
    if o >= 0 and off < state[k, o + s]:
        state[k, o + s] = off
        state[k, cfg[rings + K_FVAL] + s] = vc
    o = cfg[rings + K_LOFF]
    if o >= 0 and off >= state[k, o + s]:
        state[k, o + s] = off
        state[k, cfg[rings + K_LVAL] + s] = vc


@jit
def progressive(state, istate, k, cfg, rec, o, lo, hi, mv):
    """Sum of the statistic at offset o of buckets hi down to lo (empty ones adding 0.0), capped
    at mv after each step as the reference caps window values; returns the value and whether the
    last step capped it."""
    n = cfg[rec + R_N]
    words = cfg[rec + R_IOFF] + HEADER
    stride = cfg[rec + R_STRIDE]
    total = 0.0
    was_capped = False
    j = hi % n
    for _ in range(hi - lo + 1):
        x = state[k, o + j * stride] if filled(istate, k, words, j) else 0.0
        s = total + x
        if s > mv:
            total = mv
            was_capped = True
        else:
            total = s
            was_capped = False
        j -= 1
        if j < 0:
            j = n - 1
    return total, was_capped


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


@jit
def write(out, cfg, rec, w, i, cnt, sm, sq, mn, mx, first, last):
    """Writes an event's features of window w from the window's base statistics."""
    nw = cfg[rec + R_NW]
    base = cfg[rec + R_OUT]
    codes = rec + R_WIN + nw
    for a in range(cfg[rec + R_NA]):
        out[base + a * nw + w, i] = finish(cfg[codes + a], cnt, sm, sq, mn, mx, first, last)


@jit
def write_absent(out, flags, cfg, rec, i):
    """The event gets none of the aggregator's features."""
    base = cfg[rec + R_OUT]
    for f in range(base, base + cfg[rec + R_NA] * cfg[rec + R_NW]):
        out[f, i] = np.nan
        flags[f, i] = ABSENT


@jit
def write_capped(out, flags, cfg, rec, mv, w, i, cnt, cnt_c, sm, sm_c, sq, sq_c, mn, mx, first, last):
    """Writes capped features: additive values as summed by `progressive` (an int `max_value`
    where the last step capped), min as min(max_value, min), max/first/last of capped values."""
    nw = cfg[rec + R_NW]
    base = cfg[rec + R_OUT]
    codes = rec + R_WIN + nw
    as_int = cfg[rec + R_CAP_INT] == 1
    for a in range(cfg[rec + R_NA]):
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
        if flag != 0:
            flags[f, i] = flag


@jit
def capped_features(state, istate, k, cfg, rec, mv, w, i, lo, hi, out, flags):
    """Writes window w's capped features over buckets lo..hi."""
    if hi < lo:
        cnt, sm, sq, mn, mx, first, last = 0.0, 0.0, 0.0, INF, -INF, np.nan, np.nan
    else:
        cnt, sm, sq, mn, mx, first, last, _ = scan(state, istate, k, cfg, rec, lo, hi)
    rings = rec + R_RINGS
    cnt, cnt_c = progressive(state, istate, k, cfg, rec, cfg[rings + K_CNT], lo, hi, mv)
    sm_c = False
    sq_c = False
    if cfg[rings + K_SUM] >= 0:
        sm, sm_c = progressive(state, istate, k, cfg, rec, cfg[rings + K_SUM], lo, hi, mv)
    if cfg[rings + K_SQR] >= 0:
        sq, sq_c = progressive(state, istate, k, cfg, rec, cfg[rings + K_SQR], lo, hi, mv)
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
