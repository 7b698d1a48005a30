"""Period buckets: the layout of an aggregator's state and the loops over its buckets.

An aggregator is described by a record of int64s in the kernels' `cfg` array (`R_*` in
`storey.kernels.layout`) and keeps, per key, a block in its row of `istate` (int64s) and one in
its row of `state` (float64s):

    istate: header (4)     latest bucket B (NO_STATE before the key's first value), offset of the
                           latest time in B (ns), first bucket the key ever had, unused
            bitmap         one bit per ring slot: set when the slot holds a bucket of this turn
    state:  windows (8 each) per window, the running aggregate of the buckets it covers:
                           count, sum, sqr, min, max, oldest bucket holding a first candidate, lo
            ring (N buckets) bucket b at slot b mod N, its statistics side by side (one cache
                           line): count, then those kept of sum, sqr, min, max, first (time
                           offset, value), last (time offset, value)

A slot whose bit is clear is an empty bucket whatever it holds: nothing is cleared when buckets
leave the ring, and loops over buckets skip empty ones without touching their memory. NaN values
are counted and summed; min/max/first/last skip them. Ring positions are passed around as `j`
(the slot) and `s` (its offset, slot * stride).

Outputs: `out[f, i]` is feature f of event i and `flags[f, i]` says ABSENT (the event gets no
such feature: it came too late) or INT (a capped value equal to an int `max_value`).

The small helpers on the per-event path are inlined by Numba; the loops of the rare paths (late
events, reads at other times, capped values) stay separate functions to keep compilation short.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .layout import (
    ABSENT,
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
    W_CNT,
    W_FB,
    W_MAX,
    W_MIN,
    W_SQR,
    W_SUM,
)

INF = np.inf


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


@njit(cache=True, nogil=True, inline="always")
def slot(cfg, rec, b):
    """The offset of bucket b's slot in the ring."""
    return (b % cfg[rec + R_N]) * cfg[rec + R_STRIDE]


# the bitmap keeps 32 slots per int64 word, so that every bit operation stays positive (the same in
# the compiled kernels and their pure-Python twin)
_DE_BRUIJN = np.array(
    [
        0,
        1,
        28,
        2,
        29,
        14,
        24,
        3,
        30,
        22,
        20,
        15,
        25,
        17,
        4,
        8,
        31,
        27,
        13,
        23,
        21,
        19,
        16,
        7,
        26,
        12,
        18,
        6,
        11,
        5,
        10,
        9,
    ],
    dtype=np.int64,
)


@njit(cache=True, nogil=True, inline="always")
def bit_index(low):
    """The index of the only bit set in `low` (< 2**32)."""
    return _DE_BRUIJN[((low * 0x077CB531) & 0xFFFFFFFF) >> 27]


@njit(cache=True, nogil=True, inline="always")
def filled(irow, cfg, rec, j):
    """Whether ring slot j holds a bucket."""
    return (irow[cfg[rec + R_IOFF] + HEADER + (j >> 5)] >> (j & 31)) & 1 == 1


@njit(cache=True, nogil=True, inline="always")
def fill(irow, cfg, rec, j):
    irow[cfg[rec + R_IOFF] + HEADER + (j >> 5)] |= np.int64(1) << (j & 31)


@njit(cache=True, nogil=True, inline="always")
def chunk(irow, cfg, rec, b, hi):
    """For the buckets from b on: the slot j of b, how many buckets share its bitmap word (up to
    the word's end, the ring's end or bucket hi) and their bits (bit k: bucket b + k is filled)."""
    n = cfg[rec + R_N]
    j = b % n
    bit = j & 31
    span = 32 - bit
    if n - j < span:
        span = n - j
    if hi - b + 1 < span:
        span = hi - b + 1
    bits = (irow[cfg[rec + R_IOFF] + HEADER + (j >> 5)] >> bit) & ((np.int64(1) << span) - 1)
    return j, span, bits


@njit(cache=True, nogil=True, inline="always")
def empty_slots(irow, cfg, rec, lo, hi):
    """Marks the slots of buckets lo..hi empty (the buckets that reuse them start empty)."""
    n = cfg[rec + R_N]
    words = cfg[rec + R_IOFF] + HEADER
    if hi - lo + 1 >= n:
        for word in range((n + 31) >> 5):
            irow[words + word] = 0
        return
    b = lo
    while b <= hi:
        j, span, _ = chunk(irow, cfg, rec, b, hi)
        irow[words + (j >> 5)] &= ~(((np.int64(1) << span) - 1) << (j & 31))
        b += span


@njit(cache=True, nogil=True, inline="always")
def clear_bucket(row, cfg, rec, s):
    rings = rec + R_RINGS
    row[cfg[rings + K_CNT] + s] = 0.0
    o = cfg[rings + K_SUM]
    if o >= 0:
        row[o + s] = 0.0
    o = cfg[rings + K_SQR]
    if o >= 0:
        row[o + s] = 0.0
    o = cfg[rings + K_MIN]
    if o >= 0:
        row[o + s] = INF
    o = cfg[rings + K_MAX]
    if o >= 0:
        row[o + s] = -INF
    o = cfg[rings + K_FOFF]
    if o >= 0:
        row[o + s] = INF
        row[cfg[rings + K_FVAL] + s] = np.nan
    o = cfg[rings + K_LOFF]
    if o >= 0:
        row[o + s] = -INF
        row[cfg[rings + K_LVAL] + s] = np.nan


@njit(cache=True, nogil=True, inline="always")
def reset_window(row, wo):
    row[wo + W_CNT] = 0.0
    row[wo + W_SUM] = 0.0
    row[wo + W_SQR] = 0.0
    row[wo + W_MIN] = INF
    row[wo + W_MAX] = -INF
    row[wo + W_FB] = INF


@njit(cache=True, nogil=True, inline="always")
def capped(x, cap, mv):
    if cap and x > mv:
        return mv
    return x


@njit(cache=True, nogil=True, inline="always")
def insert(row, irow, cfg, rec, mv, j, off, v):
    """Adds value v, at time offset `off` (ns), into the bucket in ring slot j."""
    s = j * cfg[rec + R_STRIDE]
    if not filled(irow, cfg, rec, j):
        clear_bucket(row, cfg, rec, s)
        fill(irow, cfg, rec, j)
    rings = rec + R_RINGS
    cap = cfg[rec + R_CAP] == 1
    o = cfg[rings + K_CNT]
    row[o + s] = capped(row[o + s] + 1.0, cap, mv)
    o = cfg[rings + K_SUM]
    if o >= 0:
        row[o + s] = capped(row[o + s] + v, cap, mv)
    o = cfg[rings + K_SQR]
    if o >= 0:
        row[o + s] = capped(row[o + s] + v * v, cap, mv)
    if v != v:
        return
    vc = capped(v, cap, mv)
    o = cfg[rings + K_MIN]
    if o >= 0 and v < row[o + s]:
        row[o + s] = v
    o = cfg[rings + K_MAX]
    if o >= 0 and vc > row[o + s]:
        row[o + s] = vc
    o = cfg[rings + K_FOFF]
    if o >= 0 and off < row[o + s]:
        row[o + s] = off
        row[cfg[rings + K_FVAL] + s] = vc
    o = cfg[rings + K_LOFF]
    if o >= 0 and off >= row[o + s]:
        row[o + s] = off
        row[cfg[rings + K_LVAL] + s] = vc


@njit(cache=True, nogil=True, inline="always")
def add_to_window(row, wo, b, v):
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
def scan(row, irow, cfg, rec, lo, hi):
    """The aggregate of buckets lo..hi (within the ring): count, sum, sqr, min, max, first, last,
    and the oldest bucket holding a first candidate (+inf if none)."""
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
    while b <= hi:
        j, span, bits = chunk(irow, cfg, rec, b, hi)
        while bits != 0:
            low = bits & -bits
            bits ^= low
            k = bit_index(low)
            s = (j + k) * stride
            cnt += row[oc + s]
            if os_ >= 0:
                sm += row[os_ + s]
            if oq >= 0:
                sq += row[oq + s]
            if omin >= 0 and row[omin + s] < mn:
                mn = row[omin + s]
            if omax >= 0 and row[omax + s] > mx:
                mx = row[omax + s]
            if of >= 0 and first_bucket == INF and row[of + s] < INF:
                first = row[cfg[rings + K_FVAL] + s]
                first_bucket = b + k
            if ol >= 0 and row[ol + s] > -INF:
                last = row[cfg[rings + K_LVAL] + s]
        b += span
    return cnt, sm, sq, mn, mx, first, last, first_bucket


@njit(cache=True, nogil=True)
def window_from_ring(row, irow, cfg, rec, wo, lo, hi):
    """Recomputes a window's running aggregate from its buckets lo..hi."""
    reset_window(row, wo)
    if hi < lo:
        return
    cnt, sm, sq, mn, mx, _, _, first_bucket = scan(row, irow, cfg, rec, lo, hi)
    row[wo + W_CNT] = cnt
    row[wo + W_SUM] = sm
    row[wo + W_SQR] = sq
    row[wo + W_MIN] = mn
    row[wo + W_MAX] = mx
    row[wo + W_FB] = first_bucket


@njit(cache=True, nogil=True, inline="always")
def newest_last(row, irow, cfg, rec, lo, hi):
    """The last value of the newest bucket in lo..hi that has one (NaN if none)."""
    ol = cfg[rec + R_RINGS + K_LOFF]
    n = cfg[rec + R_N]
    stride = cfg[rec + R_STRIDE]
    j = hi % n
    for _ in range(hi - lo + 1):
        if filled(irow, cfg, rec, j):
            s = j * stride
            if row[ol + s] > -INF:
                return row[cfg[rec + R_RINGS + K_LVAL] + s]
        j -= 1
        if j < 0:
            j = n - 1
    return np.nan


@njit(cache=True, nogil=True)
def progressive(row, irow, cfg, rec, o, lo, hi, mv):
    """Sum of the statistic at offset o of buckets hi down to lo (empty ones adding 0.0), capped
    at mv after each step as the reference caps window values; returns the value and whether the
    last step capped it."""
    n = cfg[rec + R_N]
    stride = cfg[rec + R_STRIDE]
    total = 0.0
    was_capped = False
    j = hi % n
    for _ in range(hi - lo + 1):
        x = row[o + j * stride] if filled(irow, cfg, rec, j) else 0.0
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


@njit(cache=True, nogil=True, inline="always")
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


@njit(cache=True, nogil=True, inline="always")
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


@njit(cache=True, nogil=True, inline="always")
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
            nothing = np.nan
            write_capped(
                out,
                flags,
                cfg,
                rec,
                mv,
                w,
                i,
                0.0,
                False,
                0.0,
                False,
                0.0,
                False,
                INF,
                -INF,
                nothing,
                nothing,
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


@njit(cache=True, nogil=True)
def capped_features(row, irow, cfg, rec, mv, w, i, lo, hi, out, flags):
    """Writes window w's capped features over buckets lo..hi."""
    if hi < lo:
        cnt, sm, sq, mn, mx, first, last = 0.0, 0.0, 0.0, INF, -INF, np.nan, np.nan
    else:
        cnt, sm, sq, mn, mx, first, last, _ = scan(row, irow, cfg, rec, lo, hi)
    rings = rec + R_RINGS
    cnt, cnt_c = progressive(row, irow, cfg, rec, cfg[rings + K_CNT], lo, hi, mv)
    sm_c = False
    sq_c = False
    if cfg[rings + K_SUM] >= 0:
        sm, sm_c = progressive(row, irow, cfg, rec, cfg[rings + K_SUM], lo, hi, mv)
    if cfg[rings + K_SQR] >= 0:
        sq, sq_c = progressive(row, irow, cfg, rec, cfg[rings + K_SQR], lo, hi, mv)
    write_capped(out, flags, cfg, rec, mv, w, i, cnt, cnt_c, sm, sm_c, sq, sq_c, mn, mx, first, last)
