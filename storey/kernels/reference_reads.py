"""Where storey 1.0.6 reads a key's windows for an emitted event without a value, reproduced.

The reference aggregates events as they come but reads the windows only for the events it
emits; with EmitAfterMaxEvent (some events not emitted at once, `emitted` given to the kernels)
its windows move on while nobody reads them, and an emitted event without a value then sees them
where they were last moved, not at its own time. The kernels follow that with three words of the
key's istate header (see `storey.kernels.layout`): H_BORN (where sliding windows count from),
H_MOVED (where the reference last moved them) and H_READ (where the next such read sees them:
NO_STATE as they stand, DIRTY at the event's own time, else at that bucket). Each rule below is one of the
reference's behaviours; the kernels call them and read where they say.
"""

from .jit import jit
from .layout import DIRTY, H_B, H_BORN, H_MOVED, H_READ, MODE_QUERY, NO_STATE


@jit(inline=True)
def remember_first_event(istate, k, io, b):
    """H_BORN := the bucket b of the key's first event, with a value or not: the reference's
    sliding windows count from there (max_value windows too), not from its first value."""
    if istate[k, io + H_BORN] == NO_STATE:
        istate[k, io + H_BORN] = b


@jit(inline=True)
def sliding_note_move(istate, k, ag, b, latest):
    """H_MOVED, sliding windows with min/max/first/last: the reference moves them when a value comes
    (in bucket b) at least the shortest window past where they last moved (the key's first event,
    then its first value, then no shorter steps). Returns where they were before."""
    moved = istate[k, ag.io + H_BORN] if latest == NO_STATE else istate[k, ag.io + H_MOVED]
    if latest == NO_STATE or b - moved >= ag.smallest:
        istate[k, ag.io + H_MOVED] = b
    return moved


@jit(inline=True)
def sliding_note_unread(istate, k, ag, span, b, latest, moved, emitted_now):
    """H_READ after a value in bucket b, sliding windows: an emitted event reads the windows as they
    stand; else they move on unread (DIRTY) when the reference moves them: past where a read last
    moved them, or (with min/max/first/last) as `sliding_note_move` says, or (without) as far as
    the reference starts its running sums again (2 `span`s past the span's first bucket)."""
    if emitted_now:
        istate[k, ag.io + H_READ] = NO_STATE
        return
    born = istate[k, ag.io + H_BORN]
    seen = istate[k, ag.io + H_READ]
    old = born if latest == NO_STATE else latest
    if seen != DIRTY and seen > old:
        moves = b > seen
    elif ag.extremes:
        moves = b - moved >= ag.smallest
    else:
        moves = b > old and b - max(born, old - span + 1) >= 2 * span
    if moves:
        istate[k, ag.io + H_READ] = DIRTY


@jit(inline=True)
def sliding_read_bucket(istate, k, ag, r, latest, every, emitted, i):
    """Where the reference reads sliding windows for an event without a value after the key's
    latest bucket (its own bucket r): as they stand at the latest bucket unless they moved on
    unread, then the next emitted event moves them to its own bucket (they become H_READ, and
    H_MOVED with min/max/first/last), and later events read them there. Returns the bucket to
    read and whether this event moved them there."""
    seen = NO_STATE if every else istate[k, ag.io + H_READ]
    if seen == DIRTY and emitted[i] != 0:
        istate[k, ag.io + H_READ] = r
        if ag.extremes:
            istate[k, ag.io + H_MOVED] = r
        return r, True
    if seen != DIRTY and seen > latest:
        return seen, False
    return latest, False


@jit(inline=True)
def fixed_note_unread(istate, k, ag, common, b, latest, emitted_now):
    """H_READ after a value in bucket b, fixed windows with running sums: an emitted event reads the
    windows as they stand; else they move on unread (DIRTY) past where a read last moved them, or
    when the reference's running sums start again (b two cycles of `common` buckets, the windows'
    least common multiple, past the latest bucket's)."""
    if emitted_now:
        istate[k, ag.io + H_READ] = NO_STATE
        return
    seen = istate[k, ag.io + H_READ]
    old = b if latest == NO_STATE else latest
    if seen != DIRTY and seen > old:
        moves = b > seen
    else:
        moves = b // common - old // common >= 2
    if moves:
        istate[k, ag.io + H_READ] = DIRTY


@jit(inline=True)
def fixed_read_time(istate, k, ag, t, read_mode, emitted_now):
    """Where the reference reads fixed windows (with running sums) for an event without a value
    at time t: after they moved on unread, the next emitted event reads those holding its own time
    when it is at least the shortest window past the latest bucket (they become H_READ), else as
    they stand; later events read them at H_READ. Returns the time and read mode to read with."""
    r = t // ag.period
    latest = istate[k, ag.io + H_B]
    seen = istate[k, ag.io + H_READ]
    if seen == DIRTY and emitted_now:
        if r - latest >= ag.smallest:
            istate[k, ag.io + H_READ] = r
            return t, MODE_QUERY
        istate[k, ag.io + H_READ] = NO_STATE
    if seen != DIRTY and seen > latest and r > latest:
        return seen * ag.period, MODE_QUERY
    return t, read_mode
