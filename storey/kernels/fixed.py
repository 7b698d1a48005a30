"""Fixed windows: a ring of buckets per key (two of the largest windows; a bucket is half the
windows' greatest common divisor, as the reference's), and a running aggregate per window over the
buckets from its start `lo` to the latest one.

Aggregators without min/max/first/last (mode 0) keep the reference's running sums: windows are
aligned to multiples of their length since the epoch, and when one moves on, the buckets before its
new start are subtracted from its running aggregate, oldest first (their rounding stays behind).
The running aggregates start again from zero, forgetting the buckets, only when a new bucket is two
of the largest windows past the first bucket since they last did (or past the latest bucket less one
largest window). Aggregators with min/max/first/last (mode 1) follow the reference's precalculated
windows instead: whenever any window starts a new one, every window restarts from the first
bucket at or after max(event time rounded up to the next unit of the smallest window - window
length, start of the windows' least common multiple), and accumulates from there until any window
starts again.

Each window block remembers where its current range ends (W_END): an in-order event opens a new
range when its bucket reaches it.
"""

import numpy as np

from .buckets import (
    AHEAD,
    INF,
    clear_slots,
    features,
    filled,
    finish,
    insert_capped,
    move_latest,
    newest_last,
    prefetch,
    reset_window,
    window_from_ring,
    write,
    write_absent,
    write_empty,
)
from .jit import jit
from .layout import (
    DIRTY,
    H_B,
    H_BORN,
    H_FIRST,
    H_J,
    H_MOVED,
    H_OFF,
    H_READ,
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
    MODE_AGG,
    MODE_LAST_CLOSED,
    MODE_QUERY,
    NO_STATE,
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
    R_UNIT,
    R_VALUE,
    R_WIN,
    R_WMAX,
    R_WOFF,
    W_CNT,
    W_END,
    W_FB,
    W_LO,
    W_MAX,
    W_MIN,
    W_SIZE,
    W_SQR,
    W_SUM,
)


@jit
def fixed_start(cfg, rec, t, w):
    """The first bucket of the range window w covers for an event at time t."""
    period = cfg[rec + R_PERIOD]
    length = cfg[rec + R_WIN + w] * period
    if cfg[rec + R_MODE] == 0:
        return (t // length) * length // period
    unit = cfg[rec + R_UNIT]
    cycle = fixed_cycle(cfg, rec) * period
    lo = (t // unit) * unit + unit - length
    opened = (t // cycle) * cycle
    if lo < opened:
        lo = opened
    return -((-lo) // period)


@jit
def fixed_cycle(cfg, rec):
    """The windows' least common multiple (buckets): every window starts again together."""
    cycle = np.int64(1)
    for w in range(cfg[rec + R_NW]):
        size = cfg[rec + R_WIN + w]
        a, b = cycle, size
        while b:
            a, b = b, a % b
        cycle = cycle // a * size
    return cycle


@jit
def fixed_new_range(state, istate, k, cfg, rec, t, b, w):
    """Window w starts the range of an event at time t (in bucket b): its running aggregate is
    recomputed from the range's first bucket up to b."""
    wo = cfg[rec + R_WOFF] + w * W_SIZE
    lo = fixed_start(cfg, rec, t, w)
    if cfg[rec + R_MODE] == 0:
        size = cfg[rec + R_WIN + w]
        end = (b // size + 1) * size
    else:
        # until any window starts again
        end = b + cfg[rec + R_N]
        for x in range(cfg[rec + R_NW]):
            size = cfg[rec + R_WIN + x]
            end = min(end, (b // size + 1) * size)
    state[k, wo + W_LO] = lo
    state[k, wo + W_END] = end
    window_from_ring(state, istate, k, cfg, rec, wo, lo, b)


@jit
def fixed_start_key(state, istate, k, cfg, rec, t, b):
    """The first value of a key: an empty ring, and every window's range starting."""
    io = cfg[rec + R_IOFF]
    n = cfg[rec + R_N]
    clear_slots(istate, k, io + HEADER, n, 0, n)
    istate[k, io + H_B] = b
    istate[k, io + H_OFF] = t - b * cfg[rec + R_PERIOD]
    istate[k, io + H_J] = b % n
    istate[k, io + H_FIRST] = b
    for w in range(cfg[rec + R_NW]):
        fixed_new_range(state, istate, k, cfg, rec, t, b, w)


@jit
def fixed_restart(state, istate, k, cfg, rec, t, b):
    """The reference's running aggregates start again from zero at bucket b, once b is two of the
    largest windows past the first bucket since they last did (or past the latest bucket less one
    largest window): the buckets before b are forgotten."""
    io = cfg[rec + R_IOFF]
    n = cfg[rec + R_N]
    clear_slots(istate, k, io + HEADER, n, 0, n)
    istate[k, io + H_FIRST] = b
    for w in range(cfg[rec + R_NW]):
        wo = cfg[rec + R_WOFF] + w * W_SIZE
        reset_window(state, k, wo)
        state[k, wo + W_LO] = b
        state[k, wo + W_END] = b


@jit
def fixed_move_range(state, istate, k, cfg, rec, t, b, w):
    """Window w moves to the aligned window of an event at time t (in bucket b): the buckets
    before its start are subtracted from its running aggregate, oldest first, as the reference
    does."""
    wo = cfg[rec + R_WOFF] + w * W_SIZE
    size = cfg[rec + R_WIN + w]
    lo = np.int64(state[k, wo + W_LO])
    new_lo = (b // size) * size
    n = cfg[rec + R_N]
    words = cfg[rec + R_IOFF] + HEADER
    stride = cfg[rec + R_STRIDE]
    rings = rec + R_RINGS
    oc = cfg[rings + K_CNT]
    os_ = cfg[rings + K_SUM]
    oq = cfg[rings + K_SQR]
    if lo < b - n + 1:
        lo = b - n + 1
    for x in range(lo, new_lo):
        j = x % n
        if filled(istate, k, words, j):
            s = j * stride
            state[k, wo + W_CNT] -= state[k, oc + s]
            if os_ >= 0:
                state[k, wo + W_SUM] -= state[k, os_ + s]
            if oq >= 0:
                state[k, wo + W_SQR] -= state[k, oq + s]
    state[k, wo + W_LO] = new_lo
    state[k, wo + W_END] = new_lo + size


@jit
def fixed_same_range(cfg, rec, t, latest_t, w):
    """Whether an event at t belongs to the range window w has at the latest time."""
    if cfg[rec + R_MODE] == 0:
        length = cfg[rec + R_WIN + w] * cfg[rec + R_PERIOD]
        return t // length == latest_t // length
    period = cfg[rec + R_PERIOD]
    for x in range(cfg[rec + R_NW]):
        length = cfg[rec + R_WIN + x] * period
        if t // length != latest_t // length:
            return False
    return True


@jit
def fixed_kept_from(cfg, rec, latest, latest_t):
    """The oldest bucket the key keeps: the start of the largest window before the latest one."""
    largest = cfg[rec + R_WMAX]
    kept = ((latest_t // largest) - 1) * largest // cfg[rec + R_PERIOD]
    ring_start = latest - cfg[rec + R_N] + 1
    return kept if kept > ring_start else ring_start


@jit
def fixed_late(state, istate, k, cfg, rec, mv, t, b, out, flags, i):
    """Features of a late event (before the key's latest time): the windows holding its time."""
    io = cfg[rec + R_IOFF]
    latest = istate[k, io + H_B]
    kept = fixed_kept_from(cfg, rec, latest, latest * cfg[rec + R_PERIOD] + istate[k, io + H_OFF])
    for w in range(cfg[rec + R_NW]):
        lo = fixed_start(cfg, rec, t, w)
        if cfg[rec + R_MODE] == 0:
            hi = lo + cfg[rec + R_WIN + w] - 1
        else:
            hi = b
        if lo < kept:
            lo = kept
        features(state, istate, k, cfg, rec, mv, w, i, lo, min(hi, latest), out, flags)


@jit
def fixed_read(state, istate, k, cfg, rec, mv, t, mode, out, flags, i):
    """Features the key has at time t, changing nothing."""
    io = cfg[rec + R_IOFF]
    latest = istate[k, io + H_B]
    if latest == NO_STATE:
        if mode == MODE_AGG:
            write_empty(state, istate, cfg, rec, mv, out, flags, i)
        else:
            write_absent(out, flags, cfg, rec, i)
        return
    period = cfg[rec + R_PERIOD]
    latest_t = latest * period + istate[k, io + H_OFF]
    if mode == MODE_AGG and t > latest_t:
        t = latest_t
    kept = fixed_kept_from(cfg, rec, latest, latest_t)
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
        elif fixed_same_range(cfg, rec, t, latest_t, w):
            wo = woff + w * W_SIZE
            lo = np.int64(state[k, wo + W_LO])
            if cfg[rec + R_CAP] == 1:
                features(state, istate, k, cfg, rec, mv, w, i, lo, latest, out, flags)
                continue
            # the window's running aggregate
            first = np.nan
            fb = state[k, wo + W_FB]
            if cfg[rec + R_RINGS + K_FOFF] >= 0 and fb < INF:
                j = np.int64(fb) % cfg[rec + R_N]
                first = state[k, cfg[rec + R_RINGS + K_FVAL] + j * cfg[rec + R_STRIDE]]
            last = np.nan
            if cfg[rec + R_RINGS + K_LOFF] >= 0:
                last = newest_last(state, istate, k, cfg, rec, lo, latest)
            write(
                out,
                cfg,
                rec,
                w,
                i,
                state[k, wo + W_CNT],
                state[k, wo + W_SUM],
                state[k, wo + W_SQR],
                state[k, wo + W_MIN],
                state[k, wo + W_MAX],
                first,
                last,
            )
            continue
        else:
            lo = fixed_start(cfg, rec, t, w)
            if cfg[rec + R_MODE] == 0:
                hi = lo + size - 1
            else:
                hi = t // period
        if lo < kept:
            lo = kept
        features(state, istate, k, cfg, rec, mv, w, i, lo, min(hi, latest), out, flags)


@jit
def fixed_capped_missing(state, istate, k, cfg, rec, mv, t, out, flags, i):
    """Features of an event without a value for an aggregator with max_value, as the reference
    reports them: each window's length of buckets ending at the event's own bucket (not aligned),
    over the largest window's worth of buckets up to the key's latest; none before those."""
    io = cfg[rec + R_IOFF]
    latest = istate[k, io + H_B]
    if latest == NO_STATE:
        write_empty(state, istate, cfg, rec, mv, out, flags, i)
        return
    period = cfg[rec + R_PERIOD]
    b = t // period
    kept = latest - cfg[rec + R_WMAX] // period + 1
    if b < kept:
        write_absent(out, flags, cfg, rec, i)
        return
    for w in range(cfg[rec + R_NW]):
        lo = max(b - cfg[rec + R_WIN + w] + 1, kept)
        features(state, istate, k, cfg, rec, mv, w, i, lo, min(b, latest), out, flags)


@jit(entry=True)
def fixed_kernel(
    cfg,
    max_values,
    times,
    slots,
    values,
    valid,
    emitted,
    update,
    mode,
    state,
    istate,
    out,
    flags,
    part,
    parts,
):
    """`sliding_kernel` for fixed windows (same arguments)."""
    n = times.shape[0]
    for a in range(cfg[0]):
        rec = cfg[1 + a]
        mv = max_values[a]
        period = cfg[rec + R_PERIOD]
        n_ring = cfg[rec + R_N]
        nw = cfg[rec + R_NW]
        io = cfg[rec + R_IOFF]
        words = io + HEADER
        woff = cfg[rec + R_WOFF]
        ring = woff + nw * W_SIZE
        stride = cfg[rec + R_STRIDE]
        rings = rec + R_RINGS
        oc = cfg[rings + K_CNT]
        os_ = cfg[rings + K_SUM]
        oq = cfg[rings + K_SQR]
        omin = cfg[rings + K_MIN]
        omax = cfg[rings + K_MAX]
        of = cfg[rings + K_FOFF]
        ofv = cfg[rings + K_FVAL]
        ol = cfg[rings + K_LOFF]
        olv = cfg[rings + K_LVAL]
        capped = cfg[rec + R_CAP] == 1
        # the reference's running aggregates: buckets leaving a window are subtracted
        running = cfg[rec + R_MODE] == 0 and not capped
        vr = cfg[rec + R_VALUE]
        na = cfg[rec + R_NA]
        base = cfg[rec + R_OUT]
        codes = rec + R_WIN + nw
        read_mode = mode if update == 0 else MODE_AGG
        span = cfg[rec + R_WMAX] // period
        common = fixed_cycle(cfg, rec)
        smallest = cfg[rec + R_WIN]
        # where the reference reads the windows of an emitted event without a value (see
        # sliding's H_READ): followed for the running aggregates only
        follow = emitted.shape[0] != 0 and running
        for i in range(n):
            k = slots[i]
            if parts != 1 and k % parts != part:
                continue
            ahead = i + AHEAD
            if ahead < n:
                ka = slots[ahead]
                if ka >= 0 and (parts == 1 or ka % parts == part):
                    prefetch(istate, ka, io)
                    for x in range(woff, ring, 8):
                        prefetch(state, ka, x)
                    prefetch(state, ka, ring + ((times[ahead] // period) % n_ring) * stride)
            t = times[i]
            if k < 0:
                write_absent(out, flags, cfg, rec, i)
                continue
            if update == 0 or valid[vr, i] == 0:
                if capped and update == 1:
                    fixed_capped_missing(state, istate, k, cfg, rec, mv, t, out, flags, i)
                    continue
                if follow and istate[k, io + H_B] != NO_STATE:
                    # the windows moved on unread: the next emitted event reads those holding its
                    # own time when it is at least the shortest window past the latest bucket
                    # (else as they stand), and later ones those holding the time it read
                    r = t // period
                    latest = istate[k, io + H_B]
                    seen = istate[k, io + H_READ]
                    if seen == DIRTY and emitted[i] != 0:
                        if r - latest >= smallest:
                            istate[k, io + H_READ] = r
                            fixed_read(state, istate, k, cfg, rec, mv, t, MODE_QUERY, out, flags, i)
                            continue
                        istate[k, io + H_READ] = NO_STATE
                    if seen != DIRTY and seen > latest and r > latest:
                        fixed_read(state, istate, k, cfg, rec, mv, seen * period, MODE_QUERY, out, flags, i)
                        continue
                fixed_read(state, istate, k, cfg, rec, mv, t, read_mode, out, flags, i)
                continue
            v = values[vr, i]
            b = t // period
            latest = istate[k, io + H_B]
            if follow:
                # (H_MOVED: where an emitted event last read the windows)
                if latest == NO_STATE:
                    istate[k, io + H_BORN] = b
                    istate[k, io + H_MOVED] = b
                if emitted[i] != 0:
                    istate[k, io + H_READ] = NO_STATE
                    istate[k, io + H_MOVED] = max(b, latest)
                else:
                    anchor = max(istate[k, io + H_BORN], istate[k, io + H_MOVED])
                    seen = istate[k, io + H_READ]
                    old = b if latest == NO_STATE else latest
                    if seen != DIRTY and seen > old:
                        moves = b > seen
                    else:
                        moves = b > old and b - max(anchor, old - common + 1) >= 2 * common
                    if moves:
                        istate[k, io + H_READ] = DIRTY
            in_order = True
            if latest == NO_STATE:
                fixed_start_key(state, istate, k, cfg, rec, t, b)
                latest = b
            else:
                latest_t = latest * period + istate[k, io + H_OFF]
                if t >= latest_t:
                    restart = False
                    if b > latest:
                        if running:
                            restart = b - max(istate[k, io + H_FIRST], latest - span + 1) >= 2 * span
                        move_latest(istate, k, io, n_ring, b)
                        latest = b
                    istate[k, io + H_OFF] = t - latest * period
                    if running and restart:
                        fixed_restart(state, istate, k, cfg, rec, t, b)
                    for w in range(nw):
                        if b >= state[k, woff + w * W_SIZE + W_END]:
                            if running:
                                fixed_move_range(state, istate, k, cfg, rec, t, b, w)
                            else:
                                fixed_new_range(state, istate, k, cfg, rec, t, b, w)
                else:
                    if b < fixed_kept_from(cfg, rec, latest, latest_t):
                        write_absent(out, flags, cfg, rec, i)
                        continue
                    in_order = False
            j_latest = istate[k, io + H_J]
            j = j_latest - (latest - b)
            if j < 0:
                j += n_ring
            if capped:
                insert_capped(state, istate, k, cfg, rec, mv, j, float(t - b * period), v)
            else:
                # the value into its bucket
                s = j * stride
                if not filled(istate, k, words, j):
                    state[k, oc + s] = 0.0
                    if os_ >= 0:
                        state[k, os_ + s] = 0.0
                    if oq >= 0:
                        state[k, oq + s] = 0.0
                    if omin >= 0:
                        state[k, omin + s] = INF
                    if omax >= 0:
                        state[k, omax + s] = -INF
                    if of >= 0:
                        state[k, of + s] = INF
                        state[k, ofv + s] = np.nan
                    if ol >= 0:
                        state[k, ol + s] = -INF
                        state[k, olv + s] = np.nan
                    istate[k, words + (j >> 5)] |= np.int64(1) << (j & 31)
                state[k, oc + s] += 1.0
                if os_ >= 0:
                    state[k, os_ + s] += v
                if oq >= 0:
                    state[k, oq + s] += v * v
                if v == v:
                    # min and max without a branch on the values
                    if omin >= 0:
                        state[k, omin + s] = min(v, state[k, omin + s])
                    if omax >= 0:
                        state[k, omax + s] = max(v, state[k, omax + s])
                    if of >= 0 or ol >= 0:
                        off = float(t - b * period)
                        if of >= 0 and off < state[k, of + s]:
                            state[k, of + s] = off
                            state[k, ofv + s] = v
                        if ol >= 0 and off >= state[k, ol + s]:
                            state[k, ol + s] = off
                            state[k, olv + s] = v
            # and into the running aggregates of the windows whose range holds its bucket
            for w in range(nw):
                wo = woff + w * W_SIZE
                if b >= state[k, wo + W_LO]:
                    state[k, wo + W_CNT] += 1.0
                    if os_ >= 0:
                        state[k, wo + W_SUM] += v
                    if oq >= 0:
                        state[k, wo + W_SQR] += v * v
                    if v == v:
                        if omin >= 0:
                            state[k, wo + W_MIN] = min(v, state[k, wo + W_MIN])
                        if omax >= 0:
                            state[k, wo + W_MAX] = max(v, state[k, wo + W_MAX])
                        if of >= 0 and b < state[k, wo + W_FB]:
                            state[k, wo + W_FB] = b
            if not in_order:
                fixed_late(state, istate, k, cfg, rec, mv, t, b, out, flags, i)
                continue
            if capped:
                for w in range(nw):
                    lo = np.int64(state[k, woff + w * W_SIZE + W_LO])
                    features(state, istate, k, cfg, rec, mv, w, i, lo, b, out, flags)
                continue
            # features from the running aggregates (the event's bucket is the latest)
            for w in range(nw):
                wo = woff + w * W_SIZE
                lo = np.int64(state[k, wo + W_LO])
                cnt = state[k, wo + W_CNT]
                first = np.nan
                if of >= 0:
                    fb = state[k, wo + W_FB]
                    if fb < INF:
                        jf = j_latest - (latest - np.int64(fb))
                        if jf < 0:
                            jf += n_ring
                        first = state[k, ofv + jf * stride]
                last = np.nan
                if ol >= 0:
                    jl = j_latest
                    for _ in range(b - lo + 1):
                        if filled(istate, k, words, jl) and state[k, ol + jl * stride] > -INF:
                            last = state[k, olv + jl * stride]
                            break
                        jl -= 1
                        if jl < 0:
                            jl = n_ring - 1
                for x in range(na):
                    out[base + x * nw + w, i] = finish(
                        cfg[codes + x],
                        cnt,
                        state[k, wo + W_SUM],
                        state[k, wo + W_SQR],
                        state[k, wo + W_MIN],
                        state[k, wo + W_MAX],
                        first,
                        last,
                    )
