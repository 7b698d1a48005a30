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

`sliding_kernel` hands each event to `sliding_add` (a value: a new key, a step forward, see
`sliding_step`, an event at the latest bucket or a late one) or to `sliding_read` (no value, or a
read); where the reference reads windows it moved unread is in `storey.kernels.reference_reads`.
"""

import numpy as np

from .buckets import (
    INF,
    NEVER,
    aggregator,
    bit_index,
    bucket_add,
    chunk,
    clear_slots,
    extremes_from_ring,
    filled,
    insert_capped,
    move_latest,
    prefetch_ahead,
    reset_window,
    scan,
    slot_of,
    window_add,
    window_subtract,
    window_subtract_slots,
    windows_lcm,
    windows_newest_first,
)
from .jit import jit
from .layout import (
    H_B,
    H_BORN,
    H_FIRST,
    H_J,
    MODE_AGG,
    NO_STATE,
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
from .outputs import features, running_features, write_absent, write_empty
from .reference_reads import (
    remember_first_event,
    sliding_note_move,
    sliding_note_unread,
    sliding_read_bucket,
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
_CODE_MIN = AGGREGATIONS["min"].code
_CODE_MAX = AGGREGATIONS["max"].code


@jit
def sliding_start_key(state, istate, k, cfg, rec, b):
    """A new key (its first value, in bucket b): an empty ring and empty windows."""
    ag = aggregator(cfg, rec)
    clear_slots(istate, k, ag.words, ag.n, 0, ag.n)
    for w in range(ag.nw):
        reset_window(state, k, ag.woff + w * W_SIZE)
        state[k, ag.woff + w * W_SIZE + W_REF_FIRST] = np.nan
    istate[k, ag.io + H_B] = b
    istate[k, ag.io + H_FIRST] = b
    istate[k, ag.io + H_J] = b % ag.n


@jit(inline=True)
def window_start_slot(ag, j_latest, size):
    """The ring slot of the oldest bucket of a window of `size` buckets ending at slot j_latest."""
    j = j_latest - size + 1
    if j < 0:
        j += ag.n
    return j


@jit(inline=True)
def latest_last(state, istate, k, ag, j_latest):
    """The last value of the key's latest bucket (NaN if none, or last is not kept)."""
    if ag.o_last_at >= 0 and filled(istate, k, ag.words, j_latest):
        return state[k, ag.o_last + j_latest * ag.stride]
    return np.nan


@jit(inline=True)
def leave(state, k, ag, wo, s, last_value):
    """Subtracts the bucket at slot offset s from window block wo; returns what the window must
    then recompute (W_REDO) as the reference would: everything (_RESUM) when the bucket holds the
    window's min or max, the value the reference takes for the window's first (W_REF_FIRST), or
    the key's latest value as its last (NaN values never match); _RESUM_EXACT when the bucket's
    sum also cancels most of the window's, where a running sum keeps little of its precision."""
    redo = 0.0
    leaving = window_subtract(state, k, ag, wo, s)
    if ag.o_min >= 0 and state[k, ag.o_min + s] <= state[k, wo + W_MIN]:
        redo = _RESUM
    if ag.o_max >= 0 and state[k, ag.o_max + s] >= state[k, wo + W_MAX]:
        redo = _RESUM
    if ag.o_first_at >= 0 and state[k, ag.o_first + s] == state[k, wo + W_REF_FIRST]:
        redo = _RESUM
    if ag.o_last_at >= 0 and state[k, ag.o_last + s] == last_value:
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
    ag = aggregator(cfg, rec)
    exact = ag.o_sqr >= 0
    for w in range(ag.nw):
        wo = ag.woff + w * W_SIZE
        if not np.isfinite(state[k, wo + W_SUM]) or state[k, wo + W_REDO] == _RESUM_EXACT:
            exact = True
    for w in range(ag.nw):
        wo = ag.woff + w * W_SIZE
        if exact:
            state[k, wo + W_REDO] = _RESUM
        elif state[k, wo + W_REDO] == 0.0:
            state[k, wo + W_REDO] = _RUNNING
        else:
            state[k, wo + W_REDO] = _RUNNING_EXTREMES


@jit
def sliding_advance(state, istate, k, cfg, rec, old, new):
    """A step forward of at least the shortest window: moves the key's latest bucket from `old` to
    `new`; the ring slots of buckets old+1..new start empty, and buckets leave the windows,
    subtracted oldest first. Returns the ring slot of `new`.

    As the reference: the windows of an aggregator without min, max, first or last start again
    from zero when the new bucket is 2S buckets or more past the span's first (S: the windows'
    least common multiple; the span's first is the key's first bucket while it is younger than
    the span), what is left of a sum whose buckets all left staying until then; those of an
    aggregator with them never start again, and are all added up again from their buckets when a
    leaving bucket asks for it (see `leave`)."""
    ag = aggregator(cfg, rec)
    j_old = istate[k, ag.io + H_J]
    restart = False
    if not ag.extremes:
        span = windows_lcm(cfg, rec, NEVER)
        restart = new - max(istate[k, ag.io + H_FIRST], old - span + 1) >= 2 * span
    last_value = latest_last(state, istate, k, ag, j_old)
    resum = False
    for w in range(ag.nw):
        wo = ag.woff + w * W_SIZE
        if restart:
            reset_window(state, k, wo)
            continue
        if state[k, wo + W_CNT] == 0.0:
            continue
        size = cfg[ag.wins + w]
        j = window_start_slot(ag, j_old, size)
        redo = leave_buckets(state, istate, k, ag, wo, j, min(new - old, size), last_value)
        if ag.extremes:
            first_left = ag.o_first_at >= 0 and state[k, wo + W_FB] < new - size + 1
            resum = settle(state, k, wo, redo, first_left) >= _RESUM or resum
    if resum:
        resum_all(state, k, cfg, rec)
    return move_latest(istate, k, ag.io, ag.n, new)


@jit(inline=True)
def leave_buckets(state, istate, k, ag, wo, j, count, last_value):
    """`leave` for the buckets of `count` ring slots from slot j on, oldest first, a bitmap word at
    a time; returns the most any asked for."""
    redo = 0.0
    while count > 0:
        width, bits = chunk(istate, k, ag.words, ag.n, j, count)
        while bits != 0:
            low = bits & -bits
            bits ^= low
            redo = max(redo, leave(state, k, ag, wo, (j + bit_index(low)) * ag.stride, last_value))
        count -= width
        j += width
        if j == ag.n:
            j = 0
    return redo


@jit(inline=True)
def sliding_short_step(state, istate, k, cfg, ag, latest, b):
    """A step forward shorter than every window (the usual one): the few buckets leaving each
    window are subtracted, as `sliding_advance` does. Returns whether windows were marked to be
    recomputed (W_REDO)."""
    j_old = istate[k, ag.io + H_J]
    last_value = latest_last(state, istate, k, ag, j_old)
    marked = False
    resum = False
    for w in range(ag.nw):
        wo = ag.woff + w * W_SIZE
        if state[k, wo + W_CNT] == 0.0:
            continue
        size = cfg[ag.wins + w]
        j = window_start_slot(ag, j_old, size)
        if not ag.extremes:
            window_subtract_slots(state, istate, k, ag, wo, j, b - latest)
            continue
        redo = leave_buckets(state, istate, k, ag, wo, j, b - latest, last_value)
        first_left = ag.o_first_at >= 0 and state[k, wo + W_FB] < b - size + 1
        redo = settle(state, k, wo, redo, first_left)
        marked = marked or redo != 0.0
        resum = resum or redo >= _RESUM
    if resum:
        resum_all(state, k, cfg, ag.rec)
        marked = True
    move_latest(istate, k, ag.io, ag.n, b)
    return marked


@jit(inline=True)
def lean(ag):
    """Whether the aggregator takes the lean path of short steps: min and/or max without first,
    last or squares (and not capped), as the generic path would do it for such an aggregator."""
    no_others = ag.o_first_at < 0 and ag.o_last_at < 0 and ag.o_sqr < 0
    return ag.extremes and no_others and not ag.capped and ag.nw < 63


@jit(inline=True)
def lean_leave(state, istate, k, ag, wo, j, count):
    """Subtracts the buckets of `count` ring slots from slot j on from window block wo; returns
    whether one held its min or max, and whether one of those cancelled most of its sum."""
    hit = False
    exact = False
    for _ in range(count):
        if filled(istate, k, ag.words, j):
            s = j * ag.stride
            leaving = window_subtract(state, k, ag, wo, s)
            if (ag.o_min >= 0 and state[k, ag.o_min + s] <= state[k, wo + W_MIN]) or (
                ag.o_max >= 0 and state[k, ag.o_max + s] >= state[k, wo + W_MAX]
            ):
                hit = True
                if abs(state[k, wo + W_SUM]) * 1e6 < abs(leaving):
                    exact = True
        j += 1
        if j == ag.n:
            j = 0
    return hit, exact


@jit(inline=True)
def sliding_lean_step(state, istate, k, cfg, ag, latest, b):
    """A short step forward on the lean path (see `lean`): the windows whose leaving bucket held
    their min or max take them again from their buckets once the value is in. Returns those
    windows (bit w) and whether every window is added up again instead (see resum_all)."""
    j_old = istate[k, ag.io + H_J]
    hits = 0
    exact = False
    for w in range(ag.nw):
        wo = ag.woff + w * W_SIZE
        if state[k, wo + W_CNT] == 0.0:
            continue
        j = window_start_slot(ag, j_old, cfg[ag.wins + w])
        hit, cancelled = lean_leave(state, istate, k, ag, wo, j, b - latest)
        if hit:
            hits |= np.int64(1) << w
        exact = exact or cancelled
        if state[k, wo + W_CNT] == 0.0:
            state[k, wo + W_MIN] = INF
            state[k, wo + W_MAX] = -INF
            state[k, wo + W_FB] = INF
            if hit:
                state[k, wo + W_SUM] = 0.0
                state[k, wo + W_SQR] = 0.0
    if hits != 0 and not exact:
        for w in range(ag.nw):
            if not np.isfinite(state[k, ag.woff + w * W_SIZE + W_SUM]):
                exact = True
    move_latest(istate, k, ag.io, ag.n, b)
    return hits, exact


@jit(inline=True)
def sliding_step(state, istate, k, cfg, ag, latest, b):
    """A step forward: a value in bucket b after the key's latest. Returns what must be recomputed
    once the value is in: whether windows were marked (W_REDO), the windows of the lean path whose
    min or max left (bit w), and whether every window is then added up again."""
    if b - latest >= ag.smallest:
        sliding_advance(state, istate, k, cfg, ag.rec, latest, b)
        return ag.extremes, 0, False
    if lean(ag):
        hits, exact = sliding_lean_step(state, istate, k, cfg, ag, latest, b)
        return False, hits, exact
    return sliding_short_step(state, istate, k, cfg, ag, latest, b), 0, False


@jit(inline=True)
def sliding_windows_add(state, k, cfg, ag, latest, b, v, marked):
    """Adds value v of bucket b to the running aggregates of the windows that hold its bucket;
    those to be added up again from their buckets (_RESUM) take it from there."""
    for w in range(ag.nw):
        wo = ag.woff + w * W_SIZE
        if b < latest - cfg[ag.wins + w] + 1:
            continue
        mark = state[k, wo + W_REDO] if marked else 0.0
        if mark == _RESUM:
            # the reference's first of a window added up again: its newest bucket's
            if ag.o_first_at >= 0:
                state[k, wo + W_REF_FIRST] = v
            continue
        readded = mark == _RUNNING or mark == _RUNNING_EXTREMES
        no_first_yet = state[k, wo + W_REF_FIRST] != state[k, wo + W_REF_FIRST]
        if ag.o_first_at >= 0 and (readded or no_first_yet):
            state[k, wo + W_REF_FIRST] = v
        window_add(state, k, ag, wo, b, v)


@jit(inline=True)
def sliding_recompute(state, istate, k, cfg, ag, latest, marked, hits, exact):
    """Once the value is in: recomputes from the ring what the step spoiled (see sliding_step)."""
    if marked:
        sliding_redo(state, istate, k, cfg, ag.rec, latest)
    if exact:
        windows_newest_first(state, istate, k, cfg, ag.rec, latest, istate[k, ag.io + H_J])
    elif hits != 0:
        for w in range(ag.nw):
            if (hits >> w) & 1 == 1:
                lo = latest - cfg[ag.wins + w] + 1
                extremes_from_ring(state, istate, k, cfg, ag.rec, ag.woff + w * W_SIZE, lo, latest)


@jit
def sliding_redo(state, istate, k, cfg, rec, latest):
    """Recomputes from the ring what leaving buckets spoiled in the windows marked (W_REDO): the
    min, max or first whose bucket left, or the whole window, added up newest bucket first as the
    reference does (_RESUM)."""
    ag = aggregator(cfg, rec)
    # windows are added up again all together (resum_all)
    if state[k, ag.woff + W_REDO] == _RESUM:
        windows_newest_first(state, istate, k, cfg, rec, latest, istate[k, ag.io + H_J])
    for w in range(ag.nw):
        wo = ag.woff + w * W_SIZE
        if state[k, wo + W_REDO] == _EXTREMES or state[k, wo + W_REDO] == _RUNNING_EXTREMES:
            extremes_from_ring(state, istate, k, cfg, rec, wo, latest - cfg[ag.wins + w] + 1, latest)
        state[k, wo + W_REDO] = 0.0


@jit
def sliding_scanned(state, istate, k, cfg, rec, mv, latest, r, out, flags, i):
    """Features of the windows ending at bucket r, from the buckets the ring keeps."""
    ag = aggregator(cfg, rec)
    kept = latest - ag.n + 1
    if ag.capped:
        # the reference's windows start at the bucket of the key's first event (with a value or
        # not: empty buckets there make a capped sum a float again)
        first_bucket = istate[k, ag.io + H_FIRST]
        born = istate[k, ag.io + H_BORN]
        if born != NO_STATE and born < first_bucket:
            first_bucket = born
        if first_bucket > kept:
            kept = first_bucket
    for w in range(ag.nw):
        lo = r - cfg[ag.wins + w] + 1
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
    ag = aggregator(cfg, rec)
    kept = latest - ag.n + 1
    for w in range(ag.nw):
        lo = max(r - cfg[ag.wins + w] + 1, kept)
        hi = min(r, latest)
        if hi >= lo and scan(state, istate, k, cfg, rec, lo, hi)[0] != 0.0:
            continue
        for a in range(ag.n_aggs):
            if cfg[ag.codes + a] == _CODE_MIN:
                out[ag.out_row + a * ag.nw + w, i] = INF
            elif cfg[ag.codes + a] == _CODE_MAX:
                out[ag.out_row + a * ag.nw + w, i] = -INF


@jit(inline=True)
def sliding_add(state, istate, k, cfg, ag, mv, span, t, v, every, emitted, i, out, flags):
    """An event with value v at time t (`span`: the windows' least common multiple, capped at
    NEVER): into its bucket and the windows holding it, then its features. A new key starts; a
    value after the latest bucket steps forward; one older than every window gets no features."""
    b = t // ag.period
    latest = istate[k, ag.io + H_B]
    if not every:
        moved = sliding_note_move(istate, k, ag, b, latest) if ag.extremes else 0
        sliding_note_unread(istate, k, ag, span, b, latest, moved, emitted[i] != 0)
    marked, hits, exact = False, 0, False
    if latest == NO_STATE:
        sliding_start_key(state, istate, k, cfg, ag.rec, b)
        latest = b
    elif b > latest:
        marked, hits, exact = sliding_step(state, istate, k, cfg, ag, latest, b)
        latest = b
    elif b < latest - ag.n + 1:
        write_absent(out, flags, cfg, ag.rec, i)
        return
    j = slot_of(ag, istate[k, ag.io + H_J], latest, b)
    if ag.capped:
        insert_capped(state, istate, k, cfg, ag.rec, mv, j, float(t - b * ag.period), v)
        if marked:
            sliding_redo(state, istate, k, cfg, ag.rec, latest)
        sliding_scanned(state, istate, k, cfg, ag.rec, mv, latest, b, out, flags, i)
        return
    bucket_add(state, istate, k, ag, j, t, b, v)
    sliding_windows_add(state, k, cfg, ag, latest, b, v, marked)
    sliding_recompute(state, istate, k, cfg, ag, latest, marked, hits, exact)
    if b != latest:
        # a late event: the windows ending at its own bucket
        sliding_scanned(state, istate, k, cfg, ag.rec, mv, latest, b, out, flags, i)
        return
    for w in range(ag.nw):
        running_features(state, istate, k, cfg, ag, w, i, latest, j, cfg[ag.wins + w], out)


@jit(inline=True)
def sliding_read(state, istate, k, cfg, ag, mv, t, read_mode, update, every, emitted, i, out, flags):
    """An event without a value (update) or a read: the features the key has at time t, as
    `read_mode` sees them; changes nothing but where the reference reads next (see H_READ)."""
    latest = istate[k, ag.io + H_B]
    if latest == NO_STATE:
        if read_mode == MODE_AGG:
            write_empty(state, istate, cfg, ag.rec, mv, out, flags, i)
        else:
            write_absent(out, flags, cfg, ag.rec, i)
        return
    r = t // ag.period
    if read_mode == MODE_AGG and r > latest and not (ag.capped and update == 1):
        # like the reference, an event that is not aggregated reads the windows as they are;
        # with max_value, those ending at its own time
        r, moved = sliding_read_bucket(istate, k, ag, r, latest, every, emitted, i)
        if moved:
            sliding_moved(state, istate, k, cfg, ag.rec, mv, latest, r, out, flags, i)
            return
    if r < latest - ag.n + 1:
        write_absent(out, flags, cfg, ag.rec, i)
    elif r != latest or ag.capped:
        sliding_scanned(state, istate, k, cfg, ag.rec, mv, latest, r, out, flags, i)
    else:
        j = istate[k, ag.io + H_J]
        for w in range(ag.nw):
            running_features(state, istate, k, cfg, ag, w, i, latest, j, cfg[ag.wins + w], out)


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
    it emits every event; mode: MODE_QUERY or MODE_LAST_CLOSED, how reads see the windows;
    state/istate: float64/int64 [slot, ...]; out/flags: float64/uint8 [feature, event], flags
    zeroed by the caller. Only the events whose slot is `part` modulo `parts` are processed: calls
    for different parts touch different keys and events, and can run at the same time.

    Aggregators keep separate state, so each makes its own pass over the batch.
    """
    every = emitted.shape[0] == 0
    read_mode = mode if update == 0 else MODE_AGG
    for a in range(cfg[0]):
        ag = aggregator(cfg, cfg[1 + a])
        mv = max_values[a]
        span = windows_lcm(cfg, ag.rec, NEVER)
        for i in range(times.shape[0]):
            k = slots[i]
            if parts != 1 and k % parts != part:
                continue
            prefetch_ahead(state, istate, cfg, ag, times, slots, i, part, parts, True)
            if k < 0:
                write_absent(out, flags, cfg, ag.rec, i)
                continue
            t = times[i]
            if update != 0 and (ag.capped or not every):
                remember_first_event(istate, k, ag.io, t // ag.period)
            if update != 0 and valid[ag.value_row, i] != 0:
                v = values[ag.value_row, i]
                sliding_add(state, istate, k, cfg, ag, mv, span, t, v, every, emitted, i, out, flags)
            else:
                sliding_read(
                    state, istate, k, cfg, ag, mv, t, read_mode, update, every, emitted, i, out, flags
                )
