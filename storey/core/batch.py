"""EventBatch: n events travelling together through a flow, field by field.

Every step receives and emits batches. A batch of n events behaves exactly as n events each
passed through the whole flow before the next. Its fields are converted lazily and at most once:

- bodies: a list of Python objects (rows), or `Columns` (named NumPy arrays), or both while the
  rows are still unseen by user code;
- times: the time objects users see (`time_values`) and/or int64 epoch nanoseconds (`times`);
- keys, ids, awaitable results and request metadata (headers, method, path, content type).
"""

import copy
import uuid
from datetime import UTC, datetime

import numpy as np

from ..dtypes.event import Event
from .columns import Columns
from .times import to_ns, to_ns_array

# The request metadata of an event, as `EventBatch.meta` holds it (None stands for these defaults).
# A meta dict may also hold "origin_state" (the step whose failure sent the event to a recovery
# step) and "origin" (the object the event came as: the emitted `Event`, or an object of the
# caller's with an id, which steps then receive as the event, as in storey 1.0.6).
DEFAULT_META = {"headers": None, "method": None, "path": "/", "content_type": None, "error": None}


def event_meta(event):
    """The metadata of an event object as a batch holds it, the object itself included."""
    return {
        "headers": getattr(event, "headers", None),
        "method": getattr(event, "method", None),
        "path": getattr(event, "path", "/"),
        "content_type": getattr(event, "content_type", None),
        "error": getattr(event, "error", None),
        "origin_state": getattr(event, "origin_state", None),
        "origin": event,
    }


# Generated ids are '<uuid hex>-<counter>': a new uuid every 1024 events, as the reference does.
_ID_BLOCK_BITS = 10
_ID_BLOCK = 1 << _ID_BLOCK_BITS


class IdSequence:
    """Event ids `<uuid hex>-<4-digit counter>` (a new uuid every 1024 ids), generated only when
    someone looks at them."""

    __slots__ = ("block", "prefix", "current", "serial")

    def __init__(self):
        self.serial = 0  # ids handed out so far
        self.block = -1
        self._prefix_of(0)

    def _prefix_of(self, block):
        if block != self.block:
            self.block = block
            self.prefix = uuid.uuid4().hex
            # shared by the LazyIds of this block (never changed)
            self.current = {block: self.prefix}
        return self.prefix

    def reserve(self, n):
        """Ids for the next n events, generated when first looked at."""
        start = self.serial
        end = start + n
        self.serial = end
        block = self.block
        if start >> _ID_BLOCK_BITS == block and (end - 1) >> _ID_BLOCK_BITS == block:
            return LazyIds(self.current, range(start, end))
        if not n:
            return LazyIds({}, range(0))
        first, last = start >> _ID_BLOCK_BITS, (end - 1) >> _ID_BLOCK_BITS
        prefixes = {b: self._prefix_of(b) for b in range(first, last + 1)}
        return LazyIds(prefixes, range(start, end))

    def reserve_one(self):
        """reserve(1), in fewer steps (a live event)."""
        serial = self.serial
        self.serial = serial + 1
        if serial >> _ID_BLOCK_BITS != self.block:
            self._prefix_of(serial >> _ID_BLOCK_BITS)
        return LazyIds(self.current, (serial,))

    def next_id(self):
        serial = self.serial
        self.serial += 1
        return f"{self._prefix_of(serial >> _ID_BLOCK_BITS)}-{serial & (_ID_BLOCK - 1):04}"


class LazyIds:
    """Generated ids not built yet: their serial numbers, and the uuid prefix of each block."""

    __slots__ = ("prefixes", "serials")

    def __init__(self, prefixes, serials):
        self.prefixes = prefixes
        self.serials = serials

    def to_list(self):
        prefixes = self.prefixes
        mask = _ID_BLOCK - 1
        if len(prefixes) == 1:
            (prefix,) = prefixes.values()
            return [f"{prefix}-{s & mask:04}" for s in self.serials]
        return [f"{prefixes[s >> _ID_BLOCK_BITS]}-{s & mask:04}" for s in self.serials]

    def take(self, indices):
        serials = self.serials
        return LazyIds(self.prefixes, [serials[i] for i in indices])

    def one(self, i):
        return LazyIds(self.prefixes, (self.serials[i],))

    @staticmethod
    def concat(parts):
        prefixes = {}
        for part in parts:
            prefixes.update(part.prefixes)
        return LazyIds(prefixes, [s for part in parts for s in part.serials])


def _take_list(values, indices):
    return [values[i] for i in indices]


class EventBatch:
    """n events: bodies, keys, times, ids and per-event extras, each held as one sequence."""

    __slots__ = (
        "n",
        "_bodies",
        "_columns",
        "_keys",
        "_times",
        "_time_values",
        "_time_style",
        "_ids",
        "awaitables",
        "meta",
    )

    def __init__(
        self,
        n,
        bodies=None,
        columns=None,
        keys=None,
        times=None,
        time_values=None,
        time_style=None,
        ids=None,
        awaitables=None,
        meta=None,
    ):
        self.n = n
        self._bodies = bodies
        self._columns = columns
        self._keys = keys
        self._times = times
        self._time_values = time_values
        self._time_style = time_style
        self._ids = ids
        self.awaitables = awaitables
        self.meta = meta

    # ---- construction
    @staticmethod
    def from_events(events):
        """A batch holding the fields of these `Event` objects (their current values)."""
        n = len(events)
        # what user code hands back as an event must be one: fail as reading its body would
        bodies = [e.body for e in events]
        if len({id(e) for e in events}) < n:
            # one object given twice makes two events
            seen = set()
            events = [copy.copy(e) if id(e) in seen or seen.add(id(e)) else e for e in events]
        awaitables = [getattr(e, "_awaitable_result", None) for e in events]
        if not any(a is not None for a in awaitables):
            awaitables = None
        return EventBatch(
            n,
            bodies=bodies,
            keys=[getattr(e, "key", None) for e in events],
            time_values=[event_time_of(e) for e in events],
            ids=[e.id for e in events],
            awaitables=awaitables,
            meta=[event_meta(e) for e in events],
        )

    @staticmethod
    def empty():
        return EventBatch(0, bodies=[], keys=[], time_values=[], ids=[])

    # ---- fields
    def bodies_to_change(self):
        """The bodies as Python objects (dicts, lists, ...), for a caller that may change them;
        built once from columns if needed. From then on the rows are the truth: the columns are
        dropped."""
        if self._bodies is None:
            self._bodies = self._columns.to_rows() if self._columns is not None else [None] * self.n
        self._columns = None
        return self._bodies

    @property
    def columns(self):
        """The bodies as `Columns` of named fields, or None when they are held as rows only (or
        their rows are lists: see `stored_columns`)."""
        columns = self._columns
        return None if columns is None or columns.list_rows else columns

    def stored_columns(self):
        """The `Columns` the bodies are held in, whatever form their rows take (dicts, or lists
        of the column values in order when `Columns.list_rows`); None when held as rows only."""
        return self._columns

    def bodies_to_read(self):
        """The bodies as Python objects, for a caller that only reads them: the columns stay."""
        if self._bodies is None:
            self._bodies = self._columns.to_rows() if self._columns is not None else [None] * self.n
        return self._bodies

    def field(self, name):
        """The values of body field `name` as a 1-D NumPy array (object dtype when built from rows);
        None where a body lacks it. Bodies stay as they are."""
        columns = self.columns
        if columns is not None and self._bodies is None:
            if name in columns:
                col = columns[name]
                absent = columns.absent_rows(name)
                if absent is not None:
                    col = col.astype(object)
                    col[absent] = None
                return col
            return np.full(self.n, None, dtype=object)
        out = np.empty(self.n, dtype=object)
        for i, body in enumerate(self.bodies_to_read()):
            out[i] = _get_field(body, name)
        return out

    @property
    def keys(self):
        if self._keys is None:
            self._keys = [None] * self.n
        return self._keys

    @property
    def times(self):
        """Event times as int64 epoch nanoseconds (UTC)."""
        if self._times is None:
            self._times = to_ns_array(self._time_values)
        return self._times

    def time_ns(self, i):
        """The time of event i as int64 epoch nanoseconds (UTC), without converting the others."""
        if self._times is not None:
            return int(self._times[i])
        return to_ns(self._time_values[i])

    @property
    def time_values(self):
        """Event times as the objects users see."""
        if self._time_values is None:
            self._time_values = self._time_style.values(self._times)
        return self._time_values

    def time_value(self, i):
        """The time of event i as the object users see, without building the others."""
        if self._time_values is not None:
            return self._time_values[i]
        return self._time_style.values(self._times[i : i + 1])[0]

    @property
    def ids(self):
        ids = self._ids
        if ids is None:
            self._ids = ids = [None] * self.n
        elif isinstance(ids, LazyIds):
            self._ids = ids = ids.to_list()
        return ids

    def event(self, i):
        """Event i as an object: the object it came as while it still holds the same body (as
        storey passes one object from step to step), a shallow copy of that object when a step
        gave the event a new body, else a new `Event`."""
        body = self.bodies_to_change()[i]
        meta = self.meta[i] if self.meta is not None else None
        origin = meta.get("origin") if meta is not None else None
        if origin is None:
            ev = Event.__new__(Event)
        elif origin.body is body:
            ev = origin
        else:
            ev = copy.copy(origin)
        ev.body = body
        ev.key = self.keys[i]
        ev.time = self.time_values[i]
        ev.id = self.ids[i]
        m = meta or DEFAULT_META
        ev.headers = m["headers"]
        ev.method = m["method"]
        ev.path = m["path"]
        ev.content_type = m["content_type"]
        if origin is None or m["error"] is not None or hasattr(origin, "error"):
            ev.error = m["error"]
        state = m.get("origin_state")
        if state is not None:
            ev.origin_state = state
        ev._awaitable_result = self.awaitables[i] if self.awaitables is not None else None
        return ev

    def events(self):
        """`Event` views of all events."""
        return [self.event(i) for i in range(self.n)]

    # ---- derived batches
    def _derive(self, n, indices, bodies=None, columns=None):
        """A batch of the events at `indices` (a list of ints), with the given bodies."""
        time_values = None if self._time_values is None else _take_list(self._time_values, indices)
        times = None
        if self._times is not None and (time_values is None or n > 1):
            times = self._times[np.asarray(indices, dtype=np.int64)] if n else self._times[:0]
        ids = self._ids
        if isinstance(ids, LazyIds):
            ids = ids.take(indices)
        elif ids is not None:
            ids = _take_list(ids, indices)
        return EventBatch(
            n,
            bodies=bodies,
            columns=columns,
            keys=None if self._keys is None else _take_list(self._keys, indices),
            times=times,
            time_values=time_values,
            time_style=self._time_style,
            ids=ids,
            awaitables=None if self.awaitables is None else _take_list(self.awaitables, indices),
            meta=None if self.meta is None else _take_list(self.meta, indices),
        )

    def take(self, indices):
        """The events at `indices` (a list of ints, in any order, repeats allowed)."""
        if len(indices) == self.n and (self.n == 0 or indices == list(range(self.n))):
            return self
        bodies = None if self._bodies is None else _take_list(self._bodies, indices)
        columns = None
        if self._columns is not None and self._bodies is None:
            columns = self._columns.take(np.asarray(indices, dtype=np.int64))
        return self._derive(len(indices), indices, bodies, columns)

    def one_by_one(self):
        """The events as batches of one, in order (for steps that must see events one at a time).

        Column bodies become rows once for the whole batch rather than once per event."""
        n = self.n
        if n == 1:
            yield self
            return
        bodies = self.bodies_to_read() if n else []
        keys = self._keys
        time_values = self._time_values
        times = self._times if time_values is None else None
        style = self._time_style
        ids = self._ids
        lazy = isinstance(ids, LazyIds)
        awaitables = self.awaitables
        meta = self.meta
        for i in range(n):
            yield EventBatch(
                1,
                bodies=[bodies[i]],
                keys=None if keys is None else [keys[i]],
                times=None if times is None else times[i : i + 1],
                time_values=None if time_values is None else [time_values[i]],
                time_style=style,
                ids=None if ids is None else ids.one(i) if lazy else [ids[i]],
                awaitables=None if awaitables is None else [awaitables[i]],
                meta=None if meta is None else [meta[i]],
            )

    def slice(self, start, stop):
        return self.take(list(range(start, min(stop, self.n))))

    def with_bodies(self, bodies, indices=None):
        """The same events (or those at `indices`) with new row bodies."""
        if indices is None:
            return self._with_body_forms(bodies, None)
        return self._derive(len(indices), indices, bodies=bodies)

    def with_first_bodies(self, bodies):
        """The first len(bodies) events (all of them, or those before a failure) with new row bodies."""
        if len(bodies) == self.n:
            return self._with_body_forms(bodies, None)
        return self._derive(len(bodies), list(range(len(bodies))), bodies=bodies)

    def with_columns(self, columns):
        """The same events with new column bodies."""
        return self._with_body_forms(None, columns)

    def with_keys(self, keys):
        b = self.shallow_copy()
        b._keys = keys
        return b

    def with_times(self, times=None, time_values=None, time_style=None):
        b = self.shallow_copy()
        b._times = times
        b._time_values = time_values
        b._time_style = time_style if time_style is not None else self._time_style
        return b

    def shallow_copy(self):
        return self._with_body_forms(self._bodies, self._columns)

    def _with_body_forms(self, bodies, columns):
        """The same events, their bodies held as these rows and/or columns."""
        # positional (the constructor's order): made for every batch, some 0.2 us sooner
        return EventBatch(
            self.n,
            bodies,
            columns,
            self._keys,
            self._times,
            self._time_values,
            self._time_style,
            self._ids,
            self.awaitables,
            self.meta,
        )

    def branch_copy(self):
        """A copy for a further branch of the flow: bodies, keys and metadata are deep-copied (the
        branch may change them); awaitable results are shared."""
        b = self.shallow_copy()
        # one memo: an event object copied with its body still holds the copied body
        memo = {id(a): a for a in self.awaitables or () if a is not None}
        for m in self.meta or ():
            # an event object's result is shared, not copied (it may hold locks)
            awaitable = getattr(m.get("origin") if m else None, "_awaitable_result", None)
            if awaitable is not None:
                memo[id(awaitable)] = awaitable
        if self._bodies is not None:
            b._bodies = copy.deepcopy(self._bodies, memo)
            b._columns = None
        if self._keys is not None and any(isinstance(k, list | dict) for k in self._keys):
            b._keys = copy.deepcopy(self._keys, memo)
        if self.meta is not None:
            b.meta = copy.deepcopy(self.meta, memo)
        return b

    @staticmethod
    def concat(batches):
        batches = [b for b in batches if b.n]
        if not batches:
            return EventBatch.empty()
        if len(batches) == 1:
            return batches[0]
        n = sum(b.n for b in batches)
        columns = None
        bodies = None
        if all(b._columns is not None and b._bodies is None for b in batches):
            columns = Columns.concat([b._columns for b in batches])
        if columns is None:
            bodies = [body for b in batches for body in b.bodies_to_change()]
        if all(b._time_values is None for b in batches) and len({id(b._time_style) for b in batches}) == 1:
            times, time_values = np.concatenate([b._times for b in batches]), None
        else:
            times, time_values = None, [t for b in batches for t in b.time_values]
        if all(isinstance(b._ids, LazyIds) for b in batches):
            ids = LazyIds.concat([b._ids for b in batches])
        else:
            ids = [i for b in batches for i in b.ids]
        awaitables = None
        if any(b.awaitables is not None for b in batches):
            awaitables = [a for b in batches for a in (b.awaitables or [None] * b.n)]
        meta = None
        if any(b.meta is not None for b in batches):
            meta = [m for b in batches for m in (b.meta or [None] * b.n)]
        return EventBatch(
            n,
            bodies=bodies,
            columns=columns,
            keys=[k for b in batches for k in b.keys],
            times=times,
            time_values=time_values,
            time_style=batches[0]._time_style,
            ids=ids,
            awaitables=awaitables,
            meta=meta,
        )

    def __len__(self):
        return self.n

    def __repr__(self):
        return f"EventBatch(n={self.n}, rows={self._bodies is not None}, columns={self._columns is not None})"


def event_time_of(event):
    """The time of an event object; now (UTC) for an object of the caller's without one."""
    time = getattr(event, "time", None)
    if time is None:
        time = getattr(event, "timestamp", None)
    return time if time is not None else datetime.now(UTC)


def _get_field(body, name):
    if isinstance(body, dict):
        return body.get(name)
    return None
