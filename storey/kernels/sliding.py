"""Sliding windows: a ring of period buckets per key, and a running aggregate per window.

A window of n buckets, read at bucket r, covers buckets r - n + 1 .. r. The ring keeps the N
buckets of the longest window up to B, the latest bucket of the key. In-order events (bucket B)
read the running aggregates, updated as values arrive and as buckets leave the windows.

Sums are running sums as the reference keeps them, so that they are the reference's to the last
bit: when the latest bucket moves on, the buckets leaving a window are subtracted, oldest first,
then the new value is added. For an aggregator without min, max, first or last, the windows start
again from zero only when the new bucket is 2S buckets past the first of the reference's span of S
buckets (S: the windows' least common multiple, in buckets; the span starts at the key's first
bucket and ends at its latest bucket once that is further); until then what is left of a sum
whose buckets all left stays, a NaN keeps a window's sums NaN and a value that dwarfs the others
leaves its rounding error behind. An aggregator with min, max, first or last never starts again
from zero; instead, when a leaving bucket holds a window's min or max, the value the reference
takes for a window's first (the first value added since the window was last added up: a value of
its newest bucket, see reference defect 1) or the key's latest value as its last, every window is
added up again from its buckets, newest first, once the new value is in. Our own first is
recomputed from the ring when the bucket holding it leaves.

Late events and reads at other times scan the ring. Aggregators with a `max_value` always scan,
capping as the reference does.
"""

import numpy as np

from .buckets import (
    AHEAD,
    INF,
    bit_index,
    chunk,
    clear_slots,
    extremes_from_ring,
    features,
    filled,
    finish,
    insert_capped,
    move_latest,
    prefetch,
    reset_window,
    scan,
    windows_newest_first,
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
    NO_STATE,
    R_CAP,
    R_IOFF,
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
    W_END,
    W_FB,
    W_LO,
    W_MAX,
    W_MIN,
    W_SIZE,
    W_SQR,
    W_SUM,
)
from .registry import AGGREGATIONS

# a window block's spare fields: what it must recompute from the ring after buckets left it, and
# the value the reference takes for the window's first (NaN: none yet)
W_REDO = W_END
W_REF_FIRST = W_LO
_EXTREMES = 1.0  # min, max and the bucket of first
_RESUM = 2.0  # everything, sums included
_RESUM_EXACT = 3.0  # everything, and the sums must be the reference's (see resum_all)
# the reference adds the window up again, ours keeps its running sums (see resum_all): only
# the reference's first of the window changes, and min, max and first are recomputed (_EXTREMES)
_RUNNING = 0.5
_RUNNING_EXTREMES = 1.5
# a span of buckets no key ever steps over
_NEVER = 1 << 40
_CODE_MIN = AGGREGATIONS["min"].code
_CODE_MAX = AGGREGATIONS["max"].code


@jit
def sliding_start_key(state, istate, k, cfg, rec, b):
    """The first value of a key: an empty ring and empty windows."""
    io = cfg[rec + R_IOFF]
    n = cfg[rec + R_N]
    clear_slots(istate, k, io + HEADER, n, 0, n)
    woff = cfg[rec + R_WOFF]
    for w in range(cfg[rec + R_NW]):
        reset_window(state, k, woff + w * W_SIZE)
        state[k, woff + w * W_SIZE + W_REF_FIRST] = np.nan
    istate[k, io + H_B] = b
    istate[k, io + H_FIRST] = b
    istate[k, io + H_J] = b % n


@jit
def restart_span(cfg, rec):
    """The reference's span of buckets (its windows' least common multiple, in buckets): its
    running sums start again from zero once a key's new bucket is twice that past the span's first
    bucket."""
    span = 1
    for w in range(cfg[rec + R_NW]):
        size = cfg[rec + R_WIN + w]
        a = span
        b = size
        while b != 0:
            a, b = b, a % b
        span = span // a * size
        if span > _NEVER:
            return _NEVER
    return span


@jit(inline=True)
def leave(state, k, wo, s, oc, os_, oq, omin, omax, ofv, olv, latest_last):
    """Subtracts the bucket at slot offset s from window block wo; returns what the window must
    then recompute (W_REDO) as the reference would: everything (_RESUM) when the bucket holds the
    window's min or max, the value the reference takes for the window's first (W_REF_FIRST), or
    the key's latest value as its last (NaN values never match); _RESUM_EXACT when the bucket's
    sum also cancels most of the window's, where a running sum keeps little of its precision."""
    redo = 0.0
    state[k, wo + W_CNT] -= state[k, oc + s]
    leaving = 0.0
    if os_ >= 0:
        leaving = state[k, os_ + s]
        state[k, wo + W_SUM] -= leaving
    if oq >= 0:
        state[k, wo + W_SQR] -= state[k, oq + s]
    if omin >= 0 and state[k, omin + s] <= state[k, wo + W_MIN]:
        redo = _RESUM
    if omax >= 0 and state[k, omax + s] >= state[k, wo + W_MAX]:
        redo = _RESUM
    if ofv >= 0 and state[k, ofv + s] == state[k, wo + W_REF_FIRST]:
        redo = _RESUM
    if olv >= 0 and state[k, olv + s] == latest_last:
        redo = _RESUM
    if redo == _RESUM and abs(state[k, wo + W_SUM]) * 1e6 < abs(leaving):
        redo = _RESUM_EXACT
    return redo


@jit(inline=True)
def settle(state, k, wo, redo, first_left):
    """After buckets left window wo, `redo` being what `leave` asked for: marks what the window
    must recompute and returns what was asked (0.0: nothing), or forgets its min, max and first
    once it is empty (then the reference, adding it up again, leaves no residue of its sums)."""
    if state[k, wo + W_CNT] == 0.0:
        state[k, wo + W_MIN] = INF
        state[k, wo + W_MAX] = -INF
        state[k, wo + W_FB] = INF
        if redo == 0.0:
            return 0.0
        # added up again from no buckets: no residue of the sums
        state[k, wo + W_SUM] = 0.0
        state[k, wo + W_SQR] = 0.0
        state[k, wo + W_REDO] = redo
        return redo
    if first_left and redo == 0.0:
        redo = _EXTREMES
    if redo != 0.0:
        state[k, wo + W_REDO] = redo
    return redo


@jit
def resum_all(state, k, cfg, rec):
    """Where the reference adds every window up again, newest bucket first: marks them so.

    Only an aggregator with squares (stddev, stdvar) has that done in the reference's order
    always, as rounding differences grow in the variance. The others keep their running sums
    (which then differ from the reference's in the last bits at most; adding up the longest
    window at every such step would halve the speed of a typical sum/min/max aggregator) and
    recompute the min, max and first of the windows whose buckets asked for it (_RUNNING...),
    unless a NaN or an infinity spoiled a sum, or a leaving bucket cancelled most of one
    (_RESUM_EXACT)."""
    woff = cfg[rec + R_WOFF]
    nw = cfg[rec + R_NW]
    exact = cfg[rec + R_RINGS + K_SQR] >= 0
    for w in range(nw):
        wo = woff + w * W_SIZE
        if not np.isfinite(state[k, wo + W_SUM]) or state[k, wo + W_REDO] == _RESUM_EXACT:
            exact = True
    for w in range(nw):
        wo = woff + w * W_SIZE
        if exact:
            state[k, wo + W_REDO] = _RESUM
        elif state[k, wo + W_REDO] == 0.0:
            state[k, wo + W_REDO] = _RUNNING
        else:
            state[k, wo + W_REDO] = _RUNNING_EXTREMES


@jit
def sliding_advance(state, istate, k, cfg, rec, old, new):
    """Moves the key's latest bucket from `old` to `new`, at least the shortest window further:
    the ring slots of buckets old+1..new start empty, and buckets leave the windows, subtracted
    oldest first. Returns the ring slot of `new`.

    As the reference: the windows of an aggregator without min, max, first or last start again
    from zero when the new bucket is 2S buckets or more past the span's first (see restart_span;
    the key's first bucket while it is younger than the span), what is left of a sum whose
    buckets all left staying until then; those of an aggregator with them never start again, and
    are all added up again from their buckets when a leaving bucket asks for it (see `leave`)."""
    n = cfg[rec + R_N]
    io = cfg[rec + R_IOFF]
    words = io + HEADER
    stride = cfg[rec + R_STRIDE]
    nw = cfg[rec + R_NW]
    woff = cfg[rec + R_WOFF]
    rings = rec + R_RINGS
    oc = cfg[rings + K_CNT]
    os_ = cfg[rings + K_SUM]
    oq = cfg[rings + K_SQR]
    omin = cfg[rings + K_MIN]
    omax = cfg[rings + K_MAX]
    ofv = cfg[rings + K_FVAL] if cfg[rings + K_FOFF] >= 0 else -1
    olv = cfg[rings + K_LVAL] if cfg[rings + K_LOFF] >= 0 else -1
    extremes = omin >= 0 or omax >= 0 or ofv >= 0 or olv >= 0
    j_old = istate[k, io + H_J]
    d = new - old
    restart = False
    if not extremes:
        span = restart_span(cfg, rec)
        restart = new - max(istate[k, io + H_FIRST], old - span + 1) >= 2 * span
    latest_last = np.nan
    if olv >= 0 and filled(istate, k, words, j_old):
        latest_last = state[k, olv + j_old * stride]
    resum = False
    for w in range(nw):
        wo = woff + w * W_SIZE
        if restart:
            reset_window(state, k, wo)
            continue
        if state[k, wo + W_CNT] == 0.0:
            continue
        size = cfg[rec + R_WIN + w]
        j = j_old - size + 1
        if j < 0:
            j += n
        left = d if d < size else size
        redo = 0.0
        while left > 0:
            width, bits = chunk(istate, k, words, n, j, left)
            while bits != 0:
                low = bits & -bits
                bits ^= low
                s = (j + bit_index(low)) * stride
                x = leave(state, k, wo, s, oc, os_, oq, omin, omax, ofv, olv, latest_last)
                redo = max(redo, x)
            left -= width
            j += width
            if j == n:
                j = 0
        if extremes:
            first_left = ofv >= 0 and state[k, wo + W_FB] < new - size + 1
            resum = settle(state, k, wo, redo, first_left) >= _RESUM or resum
    if resum:
        resum_all(state, k, cfg, rec)
    return move_latest(istate, k, io, n, new)


@jit
def sliding_redo(state, istate, k, cfg, rec, latest):
    """Recomputes from the ring what leaving buckets spoiled in the windows marked (W_REDO): the
    min, max or first whose bucket left, or the whole window, added up newest bucket first as the
    reference does (_RESUM)."""
    woff = cfg[rec + R_WOFF]
    # windows are added up again all together (resum_all)
    if state[k, woff + W_REDO] == _RESUM:
        windows_newest_first(state, istate, k, cfg, rec, latest, istate[k, cfg[rec + R_IOFF] + H_J])
    for w in range(cfg[rec + R_NW]):
        wo = woff + w * W_SIZE
        if state[k, wo + W_REDO] == _EXTREMES or state[k, wo + W_REDO] == _RUNNING_EXTREMES:
            extremes_from_ring(state, istate, k, cfg, rec, wo, latest - cfg[rec + R_WIN + w] + 1, latest)
        state[k, wo + W_REDO] = 0.0


@jit
def sliding_scanned(state, istate, k, cfg, rec, mv, latest, r, out, flags, i):
    """Features of the windows ending at bucket r, from the buckets the ring keeps."""
    kept = latest - cfg[rec + R_N] + 1
    if cfg[rec + R_CAP] == 1:
        # the reference's windows start at the bucket of the key's first event (with a value or
        # not: empty buckets there make a capped sum a float again)
        first_bucket = istate[k, cfg[rec + R_IOFF] + H_FIRST]
        born = istate[k, cfg[rec + R_IOFF] + H_BORN]
        if born != NO_STATE and born < first_bucket:
            first_bucket = born
        if first_bucket > kept:
            kept = first_bucket
    for w in range(cfg[rec + R_NW]):
        lo = r - cfg[rec + R_WIN + w] + 1
        if lo < kept:
            lo = kept
        hi = r if r < latest else latest
        features(state, istate, k, cfg, rec, mv, w, i, lo, hi, out, flags)


@jit
def sliding_moved(state, istate, k, cfg, rec, mv, latest, r, out, flags, i):
    """Features of the windows the reference moved to bucket r for an emitted event without a
    value (see H_READ): as `sliding_scanned`, with the min and max of an emptied window +inf and
    -inf, as the reference's running aggregates are left."""
    sliding_scanned(state, istate, k, cfg, rec, mv, latest, r, out, flags, i)
    nw = cfg[rec + R_NW]
    base = cfg[rec + R_OUT]
    codes = rec + R_WIN + nw
    kept = latest - cfg[rec + R_N] + 1
    for w in range(nw):
        lo = max(r - cfg[rec + R_WIN + w] + 1, kept)
        hi = min(r, latest)
        if hi >= lo and scan(state, istate, k, cfg, rec, lo, hi)[0] != 0.0:
            continue
        for a in range(cfg[rec + R_NA]):
            if cfg[codes + a] == _CODE_MIN:
                out[base + a * nw + w, i] = INF
            elif cfg[codes + a] == _CODE_MAX:
                out[base + a * nw + w, i] = -INF


@jit(entry=True)
def sliding_kernel(
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
    """Aggregates a batch in arrival order (update=1) or reads the features the keys have at the
    events' times (update=0, changing nothing), and writes every event's features.

    cfg: int64 records of the aggregators (cfg[0] aggregators, cfg[1 + a] the record of a);
    max_values: float64 per aggregator; times: int64 ns; slots: int64 state row of each event's
    key (-1 when reading: a key without state); values/valid: float64/uint8 [value row, event]
    (update only: an event without a value reads the windows as they stand, MODE_AGG); emitted:
    uint8 per event (update only), whether the step emits it at once (see H_READ), or empty when
    it emits every event; mode:
    MODE_QUERY or MODE_LAST_CLOSED, how reads see the windows; state/istate: float64/int64
    [slot, ...]; out/flags: float64/uint8 [feature, event], flags zeroed by the caller. Only the
    events whose slot is `part` modulo `parts` are processed: calls for different parts touch
    different keys and events, and can run at the same time.

    Aggregators keep separate state, so each makes its own pass over the batch.
    """
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
        vr = cfg[rec + R_VALUE]
        na = cfg[rec + R_NA]
        base = cfg[rec + R_OUT]
        wins = rec + R_WIN
        codes = wins + nw
        read_mode = mode if update == 0 else MODE_AGG
        smallest = cfg[wins]
        ofv_ = ofv if of >= 0 else -1
        olv_ = olv if ol >= 0 else -1
        extremes = omin >= 0 or omax >= 0 or of >= 0 or ol >= 0
        # min and/or max without first, last or squares: steps shorter than every window take a
        # lean path (see below), as the generic one would do it for such an aggregator
        lean = extremes and of < 0 and ol < 0 and oq < 0 and not capped and nw < 63
        span = restart_span(cfg, rec)
        every = emitted.shape[0] == 0
        for i in range(n):
            k = slots[i]
            if parts != 1 and k % parts != part:
                continue
            ahead = i + AHEAD
            if ahead < n:
                ka = slots[ahead]
                if ka >= 0 and (parts == 1 or ka % parts == part):
                    # the lines the event `ahead` will touch: header and bitmap, windows, its
                    # bucket and those leaving its windows
                    prefetch(istate, ka, io)
                    for x in range(woff, ring, 8):
                        prefetch(state, ka, x)
                    ja = (times[ahead] // period) % n_ring
                    prefetch(state, ka, ring + ja * stride)
                    for w in range(nw):
                        jd = ja - cfg[wins + w]
                        if jd < 0:
                            jd += n_ring
                        prefetch(state, ka, ring + jd * stride)
            t = times[i]
            if k < 0:
                write_absent(out, flags, cfg, rec, i)
                continue
            latest = istate[k, io + H_B]
            if (capped or not every) and update != 0 and istate[k, io + H_BORN] == NO_STATE:
                istate[k, io + H_BORN] = t // period
            if update != 0 and valid[vr, i] != 0:
                v = values[vr, i]
                b = t // period
                # where the reference reads its windows for the next emitted event without a
                # value (H_READ): they move on, unread, when a value comes at least the shortest
                # window past where they last moved (with min/max/first/last: the key's first
                # event, then its first value, then no shorter steps), as far as it starts them
                # again (without), or past where such a read moved them
                if not every:
                    if extremes:
                        moved = istate[k, io + H_BORN] if latest == NO_STATE else istate[k, io + H_MOVED]
                        if latest == NO_STATE or b - moved >= smallest:
                            istate[k, io + H_MOVED] = b
                    if emitted[i] != 0:
                        istate[k, io + H_READ] = NO_STATE
                    else:
                        born = istate[k, io + H_BORN]
                        seen = istate[k, io + H_READ]
                        old = born if latest == NO_STATE else latest
                        if seen != DIRTY and seen > old:
                            moves = b > seen
                        elif extremes:
                            moves = b - moved >= smallest
                        else:
                            moves = b > old and b - max(born, old - span + 1) >= 2 * span
                        if moves:
                            istate[k, io + H_READ] = DIRTY
                redo_any = False
                # lean path: windows whose leaving buckets held their min or max (bit w), and
                # whether every window is added up again from its buckets instead (see resum_all)
                lean_hits = 0
                lean_exact = False
                if latest == NO_STATE:
                    sliding_start_key(state, istate, k, cfg, rec, b)
                    latest = b
                    j_latest = istate[k, io + H_J]
                elif b - latest >= smallest:
                    j_latest = sliding_advance(state, istate, k, cfg, rec, latest, b)
                    latest = b
                    redo_any = extremes
                elif b > latest and lean:
                    # as below for min/max alone: the windows whose leaving bucket held their min
                    # or max take them again from their buckets once the value is in
                    d = b - latest
                    j_old = istate[k, io + H_J]
                    for w in range(nw):
                        wo = woff + w * W_SIZE
                        if state[k, wo + W_CNT] == 0.0:
                            continue
                        jd = j_old - cfg[wins + w] + 1
                        if jd < 0:
                            jd += n_ring
                        for _ in range(d):
                            if filled(istate, k, words, jd):
                                sd = jd * stride
                                state[k, wo + W_CNT] -= state[k, oc + sd]
                                leaving = 0.0
                                if os_ >= 0:
                                    leaving = state[k, os_ + sd]
                                    state[k, wo + W_SUM] -= leaving
                                if (omin >= 0 and state[k, omin + sd] <= state[k, wo + W_MIN]) or (
                                    omax >= 0 and state[k, omax + sd] >= state[k, wo + W_MAX]
                                ):
                                    lean_hits |= np.int64(1) << w
                                    if abs(state[k, wo + W_SUM]) * 1e6 < abs(leaving):
                                        lean_exact = True
                            jd += 1
                            if jd == n_ring:
                                jd = 0
                        if state[k, wo + W_CNT] == 0.0:
                            state[k, wo + W_MIN] = INF
                            state[k, wo + W_MAX] = -INF
                            state[k, wo + W_FB] = INF
                            if (lean_hits >> w) & 1 == 1:
                                state[k, wo + W_SUM] = 0.0
                                state[k, wo + W_SQR] = 0.0
                    if lean_hits != 0 and not lean_exact:
                        for w in range(nw):
                            if not np.isfinite(state[k, woff + w * W_SIZE + W_SUM]):
                                lean_exact = True
                    j_latest = move_latest(istate, k, io, n_ring, b)
                    latest = b
                elif b > latest:
                    # a step shorter than every window (the usual one): the few buckets leaving
                    # each window are subtracted here, as sliding_advance does
                    d = b - latest
                    j_old = istate[k, io + H_J]
                    latest_last = np.nan
                    if olv_ >= 0 and filled(istate, k, words, j_old):
                        latest_last = state[k, olv_ + j_old * stride]
                    resum = False
                    for w in range(nw):
                        wo = woff + w * W_SIZE
                        if state[k, wo + W_CNT] == 0.0:
                            continue
                        size = cfg[wins + w]
                        jd = j_old - size + 1
                        if jd < 0:
                            jd += n_ring
                        if not extremes:
                            for _ in range(d):
                                if filled(istate, k, words, jd):
                                    sd = jd * stride
                                    state[k, wo + W_CNT] -= state[k, oc + sd]
                                    if os_ >= 0:
                                        state[k, wo + W_SUM] -= state[k, os_ + sd]
                                    if oq >= 0:
                                        state[k, wo + W_SQR] -= state[k, oq + sd]
                                jd += 1
                                if jd == n_ring:
                                    jd = 0
                            continue
                        redo = 0.0
                        for _ in range(d):
                            if filled(istate, k, words, jd):
                                x = leave(
                                    state,
                                    k,
                                    wo,
                                    jd * stride,
                                    oc,
                                    os_,
                                    oq,
                                    omin,
                                    omax,
                                    ofv_,
                                    olv_,
                                    latest_last,
                                )
                                redo = max(redo, x)
                            jd += 1
                            if jd == n_ring:
                                jd = 0
                        first_left = of >= 0 and state[k, wo + W_FB] < b - size + 1
                        redo = settle(state, k, wo, redo, first_left)
                        if redo != 0.0:
                            redo_any = True
                        resum = resum or redo >= _RESUM
                    if resum:
                        resum_all(state, k, cfg, rec)
                        redo_any = True
                    j_latest = move_latest(istate, k, io, n_ring, b)
                    latest = b
                else:
                    if b < latest - n_ring + 1:
                        write_absent(out, flags, cfg, rec, i)
                        continue
                    j_latest = istate[k, io + H_J]
                j = j_latest - (latest - b)
                if j < 0:
                    j += n_ring
                if capped:
                    insert_capped(state, istate, k, cfg, rec, mv, j, float(t - b * period), v)
                    if redo_any:
                        sliding_redo(state, istate, k, cfg, rec, latest)
                    sliding_scanned(state, istate, k, cfg, rec, mv, latest, b, out, flags, i)
                    continue
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
                # and into the running aggregates of the windows that hold its bucket (those to
                # be added up again from their buckets take it from there)
                for w in range(nw):
                    wo = woff + w * W_SIZE
                    if b < latest - cfg[wins + w] + 1:
                        continue
                    mark = state[k, wo + W_REDO] if redo_any else 0.0
                    if mark == _RESUM:
                        # the reference's first of a window added up again: its newest bucket's
                        if of >= 0:
                            state[k, wo + W_REF_FIRST] = v
                    else:
                        readded = mark == _RUNNING or mark == _RUNNING_EXTREMES
                        if of >= 0 and (readded or state[k, wo + W_REF_FIRST] != state[k, wo + W_REF_FIRST]):
                            state[k, wo + W_REF_FIRST] = v
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
                if redo_any:
                    sliding_redo(state, istate, k, cfg, rec, latest)
                if lean_exact:
                    windows_newest_first(state, istate, k, cfg, rec, latest, j_latest)
                elif lean_hits != 0:
                    for w in range(nw):
                        if (lean_hits >> w) & 1 == 1:
                            wo = woff + w * W_SIZE
                            lo = latest - cfg[wins + w] + 1
                            extremes_from_ring(state, istate, k, cfg, rec, wo, lo, latest)
                if b != latest:
                    sliding_scanned(state, istate, k, cfg, rec, mv, latest, b, out, flags, i)
                    continue
            else:
                if latest == NO_STATE:
                    if read_mode == MODE_AGG:
                        write_empty(state, istate, cfg, rec, mv, out, flags, i)
                    else:
                        write_absent(out, flags, cfg, rec, i)
                    continue
                r = t // period
                if read_mode == MODE_AGG and r > latest and not (capped and update == 1):
                    # like the reference, an event that is not aggregated reads the windows as they
                    # are (see H_READ); with max_value, those ending at its own time
                    seen = NO_STATE if every else istate[k, io + H_READ]
                    if seen == DIRTY and emitted[i] != 0:
                        istate[k, io + H_READ] = r
                        if extremes:
                            istate[k, io + H_MOVED] = r
                        sliding_moved(state, istate, k, cfg, rec, mv, latest, r, out, flags, i)
                        continue
                    if seen != DIRTY and seen > latest:
                        sliding_scanned(state, istate, k, cfg, rec, mv, latest, seen, out, flags, i)
                        continue
                    r = latest
                if r < latest - n_ring + 1:
                    write_absent(out, flags, cfg, rec, i)
                    continue
                if r != latest or capped:
                    sliding_scanned(state, istate, k, cfg, rec, mv, latest, r, out, flags, i)
                    continue
                j_latest = istate[k, io + H_J]
            # features at the latest bucket, from the running aggregates
            for w in range(nw):
                wo = woff + w * W_SIZE
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
                    for _ in range(cfg[wins + w]):
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
