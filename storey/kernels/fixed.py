"""Fixed windows: a ring of buckets per key, and a running aggregate per window over the buckets
from its start `lo` to the latest one.

Every window starts again at the multiples of the windows' least common multiple since the epoch:
a *cycle* (`common` buckets; a bucket is half the windows' greatest common divisor, as the
reference's). As the reference does, a key keeps the buckets of its latest bucket's cycle: an event
before that cycle is too late for every kept bucket, and gets no features. The ring holds one cycle
and the largest window before it, which QueryByKey's reads of a last closed window reach.

Aggregators without min/max/first/last (mode 0) keep the reference's running sums: windows are
aligned to multiples of their length since the epoch, and when one moves on, the buckets before its
new start are subtracted from its running aggregate, oldest first (their rounding stays behind),
while the ring still holds them. The running aggregates start again from zero, forgetting the
buckets, only when a new bucket is two cycles or more past the latest one's cycle (the next cycle's
buckets are subtracted). Aggregators with min/max/first/last (mode 1) follow the reference's precalculated
windows instead: whenever any window starts a new one, every window restarts from the first
bucket at or after max(event time rounded up to the next unit of the smallest window - window
length, start of the windows' least common multiple), and accumulates from there until any window
starts again.

Each window block remembers where its current range ends (W_END): an in-order event opens a new
range when its bucket reaches it.

`fixed_kernel` hands each event to `fixed_add` (a value: a new key, a step forward, see
`fixed_step`, or a late event) or to `fixed_read` (no value, or a read; `fixed_capped_missing`
with max_value); where the reference reads windows it moved unread is in
`storey.kernels.reference_reads`.
"""

import numpy as np

from .buckets import (
    NO_LIMIT,
    aggregator,
    bucket_add,
    clear_slots,
    insert_capped,
    move_latest,
    prefetch_ahead,
    reset_window,
    slot_of,
    window_add,
    window_from_ring,
    window_subtract_slots,
    windows_lcm,
)
from .jit import jit
from .layout import (
    H_B,
    H_FIRST,
    H_J,
    H_OFF,
    MODE_AGG,
    MODE_LAST_CLOSED,
    NO_STATE,
    R_UNIT,
    R_WMAX,
    W_END,
    W_LO,
    W_SIZE,
)
from .outputs import features, running_features, write_absent, write_empty
from .reference_reads import fixed_note_unread, fixed_read_time


@jit
def fixed_start(cfg, rec, t, w):
    """The first bucket of the range window w covers for an event at time t."""
    ag = aggregator(cfg, rec)
    length = cfg[ag.wins + w] * ag.period
    if ag.mode == 0:
        return (t // length) * length // ag.period
    unit = cfg[rec + R_UNIT]
    cycle = windows_lcm(cfg, rec, NO_LIMIT) * ag.period
    lo = (t // unit) * unit + unit - length
    opened = (t // cycle) * cycle
    if lo < opened:
        lo = opened
    return -((-lo) // ag.period)


@jit
def fixed_new_range(state, istate, k, cfg, rec, t, b, w):
    """Window w starts the range of an event at time t (in bucket b): its running aggregate is
    recomputed from the range's first bucket up to b."""
    ag = aggregator(cfg, rec)
    wo = ag.woff + w * W_SIZE
    lo = fixed_start(cfg, rec, t, w)
    if ag.mode == 0:
        size = cfg[ag.wins + w]
        end = (b // size + 1) * size
    else:
        # until any window starts again
        end = b + ag.n
        for x in range(ag.nw):
            size = cfg[ag.wins + x]
            end = min(end, (b // size + 1) * size)
    state[k, wo + W_LO] = lo
    state[k, wo + W_END] = end
    window_from_ring(state, istate, k, cfg, rec, wo, lo, b)


@jit
def fixed_start_key(state, istate, k, cfg, rec, t, b):
    """A new key (its first value, at time t in bucket b): an empty ring, and every window's
    range starting."""
    ag = aggregator(cfg, rec)
    clear_slots(istate, k, ag.words, ag.n, 0, ag.n)
    istate[k, ag.io + H_B] = b
    istate[k, ag.io + H_OFF] = t - b * ag.period
    istate[k, ag.io + H_J] = b % ag.n
    istate[k, ag.io + H_FIRST] = b
    for w in range(ag.nw):
        fixed_new_range(state, istate, k, cfg, rec, t, b, w)


@jit
def fixed_restart(state, istate, k, cfg, rec, b):
    """The reference's running aggregates start again from zero at bucket b, two cycles or more past
    the latest one's: the buckets before b are forgotten, and every window takes its aligned range
    holding b."""
    ag = aggregator(cfg, rec)
    clear_slots(istate, k, ag.words, ag.n, 0, ag.n)
    for w in range(ag.nw):
        wo = ag.woff + w * W_SIZE
        size = cfg[ag.wins + w]
        reset_window(state, k, wo)
        state[k, wo + W_LO] = (b // size) * size
        state[k, wo + W_END] = (b // size) * size + size


@jit
def fixed_move_range(state, istate, k, cfg, rec, b, latest, w):
    """Window w moves on to its aligned range holding bucket b, before the key's latest bucket moves
    there: the buckets from its start on, up to the latest one, are subtracted from its running
    aggregate, oldest first, as the reference does (the ring still holds them all, late events'
    buckets included)."""
    ag = aggregator(cfg, rec)
    wo = ag.woff + w * W_SIZE
    size = cfg[ag.wins + w]
    lo = np.int64(state[k, wo + W_LO])
    new_lo = (b // size) * size
    window_subtract_slots(state, istate, k, ag, wo, lo % ag.n, min(new_lo, latest + 1) - lo)
    state[k, wo + W_LO] = new_lo
    state[k, wo + W_END] = new_lo + size


@jit
def fixed_same_range(cfg, rec, t, latest_t, w):
    """Whether an event at t belongs to the range window w has at the latest time."""
    ag = aggregator(cfg, rec)
    if ag.mode == 0:
        length = cfg[ag.wins + w] * ag.period
        return t // length == latest_t // length
    for x in range(ag.nw):
        length = cfg[ag.wins + x] * ag.period
        if t // length != latest_t // length:
            return False
    return True


@jit(inline=True)
def fixed_kept_from(common, latest):
    """The oldest bucket the key keeps: the start of its latest bucket's cycle."""
    return (latest // common) * common


@jit
def fixed_readable_from(cfg, rec, latest, latest_t):
    """The oldest bucket a query reads: the start of the largest window before the latest one."""
    ag = aggregator(cfg, rec)
    largest = cfg[rec + R_WMAX]
    return ((latest_t // largest) - 1) * largest // ag.period


@jit
def fixed_late(state, istate, k, cfg, rec, mv, t, b, out, flags, i):
    """Features of a late event (before the key's latest time): the windows holding its time."""
    ag = aggregator(cfg, rec)
    latest = istate[k, ag.io + H_B]
    kept = fixed_kept_from(windows_lcm(cfg, rec, NO_LIMIT), latest)
    for w in range(ag.nw):
        lo = fixed_start(cfg, rec, t, w)
        if ag.mode == 0:
            hi = lo + cfg[ag.wins + w] - 1
        else:
            hi = b
        if lo < kept:
            lo = kept
        features(state, istate, k, cfg, rec, mv, w, i, lo, min(hi, latest), out, flags)


@jit
def fixed_read(state, istate, k, cfg, rec, mv, t, mode, out, flags, i):
    """Features the key has at time t, as `mode` sees them, changing nothing."""
    ag = aggregator(cfg, rec)
    latest = istate[k, ag.io + H_B]
    if latest == NO_STATE:
        if mode == MODE_AGG:
            write_empty(state, istate, cfg, rec, mv, out, flags, i)
        else:
            write_absent(out, flags, cfg, rec, i)
        return
    latest_t = latest * ag.period + istate[k, ag.io + H_OFF]
    if mode == MODE_AGG and t > latest_t:
        t = latest_t
    if mode == MODE_AGG:
        kept = fixed_kept_from(windows_lcm(cfg, rec, NO_LIMIT), latest)
    else:
        kept = fixed_readable_from(cfg, rec, latest, latest_t)
    if t // ag.period < kept:
        write_absent(out, flags, cfg, rec, i)
        return
    for w in range(ag.nw):
        size = cfg[ag.wins + w]
        if mode == MODE_LAST_CLOSED:
            length = size * ag.period
            lo = ((t // length) - 1) * length // ag.period
            hi = lo + size - 1
        elif fixed_same_range(cfg, rec, t, latest_t, w):
            lo = np.int64(state[k, ag.woff + w * W_SIZE + W_LO])
            if ag.capped:
                features(state, istate, k, cfg, rec, mv, w, i, lo, latest, out, flags)
            else:
                j = istate[k, ag.io + H_J]
                running_features(state, istate, k, cfg, ag, w, i, latest, j, latest - lo + 1, out)
            continue
        else:
            lo = fixed_start(cfg, rec, t, w)
            hi = lo + size - 1 if ag.mode == 0 else t // ag.period
        if lo < kept:
            lo = kept
        features(state, istate, k, cfg, rec, mv, w, i, lo, min(hi, latest), out, flags)


@jit
def fixed_capped_missing(state, istate, k, cfg, rec, mv, t, out, flags, i):
    """Features of an event without a value for an aggregator with max_value, as the reference
    reports them: each window's length of buckets ending at the event's own bucket (not aligned),
    over the buckets the key keeps (its latest bucket's cycle) up to its latest; none before those."""
    ag = aggregator(cfg, rec)
    latest = istate[k, ag.io + H_B]
    if latest == NO_STATE:
        write_empty(state, istate, cfg, rec, mv, out, flags, i)
        return
    b = t // ag.period
    kept = fixed_kept_from(windows_lcm(cfg, rec, NO_LIMIT), latest)
    if b < kept:
        write_absent(out, flags, cfg, rec, i)
        return
    for w in range(ag.nw):
        lo = max(b - cfg[ag.wins + w] + 1, kept)
        features(state, istate, k, cfg, rec, mv, w, i, lo, min(b, latest), out, flags)


@jit(inline=True)
def running(ag):
    """Whether the aggregator keeps the reference's running sums (mode 0, not capped): buckets
    leaving a window are subtracted from it."""
    return ag.mode == 0 and not ag.capped


@jit(inline=True)
def fixed_step(state, istate, k, cfg, ag, common, t, b, latest):
    """A step forward: an event at time t (bucket b) at or after the key's latest time. The
    windows whose range b leaves take their next one (the running sums subtract what leaves them,
    or start again where the reference's do: two cycles on), and the latest bucket moves to b."""
    if b > latest:
        restart = running(ag) and b // common - latest // common >= 2
        if running(ag) and not restart:
            for w in range(ag.nw):
                if b >= state[k, ag.woff + w * W_SIZE + W_END]:
                    fixed_move_range(state, istate, k, cfg, ag.rec, b, latest, w)
        move_latest(istate, k, ag.io, ag.n, b)
        if restart:
            fixed_restart(state, istate, k, cfg, ag.rec, b)
        if not running(ag):
            for w in range(ag.nw):
                if b >= state[k, ag.woff + w * W_SIZE + W_END]:
                    fixed_new_range(state, istate, k, cfg, ag.rec, t, b, w)
        latest = b
    istate[k, ag.io + H_OFF] = t - latest * ag.period


@jit(inline=True)
def fixed_add(state, istate, k, cfg, ag, mv, common, follow, t, v, emitted, i, out, flags):
    """An event with value v at time t: into its bucket and the windows whose range holds it,
    then its features. A new key starts; an in-order event steps forward; a late one reads the
    windows holding its time, or gets no features before the buckets the key keeps."""
    b = t // ag.period
    latest = istate[k, ag.io + H_B]
    if follow:
        fixed_note_unread(istate, k, ag, common, b, latest, emitted[i] != 0)
    late = False
    if latest == NO_STATE:
        fixed_start_key(state, istate, k, cfg, ag.rec, t, b)
        latest = b
    else:
        latest_t = latest * ag.period + istate[k, ag.io + H_OFF]
        if t >= latest_t:
            fixed_step(state, istate, k, cfg, ag, common, t, b, latest)
            latest = max(latest, b)
        elif b < fixed_kept_from(common, latest):
            write_absent(out, flags, cfg, ag.rec, i)
            return
        else:
            late = True
    j = slot_of(ag, istate[k, ag.io + H_J], latest, b)
    if ag.capped:
        insert_capped(state, istate, k, cfg, ag.rec, mv, j, float(t - b * ag.period), v)
    else:
        bucket_add(state, istate, k, ag, j, t, b, v)
    for w in range(ag.nw):
        wo = ag.woff + w * W_SIZE
        if b >= state[k, wo + W_LO]:
            window_add(state, k, ag, wo, b, v)
    if late:
        fixed_late(state, istate, k, cfg, ag.rec, mv, t, b, out, flags, i)
        return
    for w in range(ag.nw):
        lo = np.int64(state[k, ag.woff + w * W_SIZE + W_LO])
        if ag.capped:
            features(state, istate, k, cfg, ag.rec, mv, w, i, lo, b, out, flags)
        else:
            running_features(state, istate, k, cfg, ag, w, i, latest, j, b - lo + 1, out)


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
    read_mode = mode if update == 0 else MODE_AGG
    for a in range(cfg[0]):
        ag = aggregator(cfg, cfg[1 + a])
        mv = max_values[a]
        common = windows_lcm(cfg, ag.rec, NO_LIMIT)
        # where the reference reads the windows of an emitted event without a value (see
        # storey.kernels.reference_reads): followed for the running sums only
        follow = emitted.shape[0] != 0 and running(ag)
        for i in range(times.shape[0]):
            k = slots[i]
            if parts != 1 and k % parts != part:
                continue
            prefetch_ahead(state, istate, cfg, ag, times, slots, i, part, parts, False)
            if k < 0:
                write_absent(out, flags, cfg, ag.rec, i)
                continue
            t = times[i]
            if update != 0 and valid[ag.value_row, i] != 0:
                v = values[ag.value_row, i]
                fixed_add(state, istate, k, cfg, ag, mv, common, follow, t, v, emitted, i, out, flags)
            elif ag.capped and update == 1:
                fixed_capped_missing(state, istate, k, cfg, ag.rec, mv, t, out, flags, i)
            elif follow and istate[k, ag.io + H_B] != NO_STATE:
                t_read, mode_read = fixed_read_time(istate, k, ag, t, read_mode, emitted[i] != 0)
                fixed_read(state, istate, k, cfg, ag.rec, mv, t_read, mode_read, out, flags, i)
            else:
                fixed_read(state, istate, k, cfg, ag.rec, mv, t, read_mode, out, flags, i)
