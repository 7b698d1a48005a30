"""Table: per-key state (static attributes and window aggregations) in front of a storage driver.

Steps use a table through a small internal interface:

- static attributes: `await table._ensure_loaded(keys)` once per batch, then
  `table._get_static(key)` per event; `table._update_static(key, attrs)` (merge) or
  `table._set_static(key, attrs)` (replace) per event, then `await table._written()` once per batch;
- window aggregation: `slots = await table._aggregation_slots(keys, groups)` once per batch (the
  keys' rows in the groups' arrays, see `storey.table.aggregation_state`), then, once the kernels
  updated them, `await table._aggregated(slots, groups)`;
- life cycle: `table._bind(runtime)` in `_init` (periodic flushes use the flow's timers),
  `await table._end_flow(flush)` in `_on_terminate` (flush=True for steps that write),
  `table._unbind(runtime)` in `_close`.

Over a storage that keeps state (any driver but `NoopDriver`), the table loads a key the first
time a batch needs it, static attributes and aggregation state together (one driver call per batch
for every such key), and saves the changed keys in batches, in a thread of its own so that the
flow goes on meanwhile: every `flush_interval_secs`, at the end of each flow (a failed one too),
and after each batch when there is no interval. `storey.drivers` states the contract.
"""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..core.checks import check_seconds
from ..drivers.driver import AggregatorRows, Changes, Driver, StoredKey
from ..dtypes.event import FlowError
from ..kernels.layout import H_B, NO_STATE
from .aggregation_state import describe, difference
from .keys import table_key

__all__ = ["Table", "resolve_table", "table_key"]

# how many keys a flush error names
_KEYS_NAMED = 5
# the fewest events aggregated between two checks for keys whose windows are all past
_IDLE_CHECK_EVERY = 1 << 16


def _windows_past(state):
    """The slots of the keys whose windows are all past: for every aggregator, the key's latest
    bucket is a whole ring (its longest windows) behind the latest bucket of any key."""
    count = len(state.keys)
    past = np.ones(count, dtype=bool)
    past[state.free] = False  # released slots hold no key
    for group in state.groups:
        for layout in group.layouts:
            latest = group.istate[:count, layout.ioffset + H_B]
            valued = latest != NO_STATE
            if not valued.any():
                return np.zeros(0, dtype=np.int64)
            now = latest[valued].max()
            past &= valued & (now - latest >= layout.ring)
    return np.flatnonzero(past)


class Table:
    """Table object, represents a single table in a specific storage.

    A table holds, per key, static attributes (a dict, written by `NoSqlTarget` and
    `MapWithState`, read by `JoinWithTable` and `AggregateByKey(enrich_with=...)`) and window
    aggregations (`AggregateByKey`, `QueryByKey`). It loads a key's state from its storage the
    first time a step needs it, and flushes changed keys to the storage in batches.

    :param table_path: path to the table in the storage.
    :param storage: storage driver (`NoopDriver()` keeps everything in memory).
    :param partitioned_by_key: whether the data is partitioned by the key or not; storage drivers
        can optimize writes based on it. Defaults to True.
    :param flush_interval_secs: how often the cache is flushed to the storage, in seconds. None
        (or 0) writes every change through at once. Default is 300 (5 minutes). Flows also flush when
        they terminate.
    :param max_updates_in_flight: maximum number of concurrent updates sent to the storage.
    :param max_keys_in_memory: the most keys whose window state the table keeps in its arrays:
        past it, the least recently used are saved and let go (over a storage), or kept packed
        (in memory), and come back when a batch needs them, as if they had never left. None (the
        default) for no bound. Keys whose windows are all past are let go the same way in any
        case.
    """

    def __init__(
        self,
        table_path: str,
        storage: Driver,
        partitioned_by_key: bool = True,
        flush_interval_secs: int | None = 300,
        max_updates_in_flight: int = 8,
        max_keys_in_memory: int | None = None,
    ):
        if not isinstance(table_path, str):
            raise TypeError(
                f"Table: table_path must be a string, got {type(table_path).__name__}: {table_path!r}"
            )
        if not isinstance(storage, Driver):
            raise TypeError(
                f"Table: storage must be a storey.drivers.Driver (e.g. NoopDriver()), "
                f"got {type(storage).__name__}: {storage!r}"
            )
        if flush_interval_secs is not None:
            check_seconds("Table", "flush_interval_secs", flush_interval_secs)
        if (
            isinstance(max_updates_in_flight, bool)
            or not isinstance(max_updates_in_flight, int)
            or max_updates_in_flight < 1
        ):
            raise ValueError(
                f"Table: max_updates_in_flight must be a positive int, got {max_updates_in_flight!r}"
            )
        if max_keys_in_memory is not None and (
            isinstance(max_keys_in_memory, bool)
            or not isinstance(max_keys_in_memory, int)
            or max_keys_in_memory < 1
        ):
            raise ValueError(
                f"Table: max_keys_in_memory must be a positive int or None, got {max_keys_in_memory!r}"
            )
        self._table_path = table_path
        self._storage = storage
        self._max_keys = max_keys_in_memory
        # keys let go of a table that keeps nothing in a storage: key -> {aggregator name: (floats,
        # ints)}, their state packed as a flush would store it
        self._packed = {}
        # events aggregated since keys were last checked for windows all past
        self._since_idle_check = 0
        self._partitioned_by_key = bool(partitioned_by_key)
        self._flush_interval_secs = flush_interval_secs
        # None (and 0, which the reference takes the same way) writes every change through at once
        self._write_through = not flush_interval_secs
        self._max_updates_in_flight = max_updates_in_flight
        # key (table form) -> static attributes
        self._static = {}
        # window-aggregation state (storey.table.aggregation_state), made by the first step that
        # aggregates into the table
        self._aggregation_state = None
        self._persists = storage._persists
        # keys the storage is known to hold nothing for
        self._absent = set()
        # keys written before what the storage holds for them was loaded
        self._partial = set()
        # what the next flush saves: key -> attributes to set, key -> attribute names to remove
        self._pending = {}
        self._removed = {}
        # aggregator name -> description, of the aggregators whose state the storage holds (loaded
        # on first use), and of those it does not hold yet (saved with their first state)
        self._stored_schema = None
        self._new_schema = {}
        self._checked = set()
        # the thread that writes flushes, and the flush it is writing: (future, undo)
        self._writer = None
        self._in_flight = None
        self._runtime = None
        self._timer = None

    def __repr__(self):
        return f"Table({self._table_path!r}, {type(self._storage).__name__})"

    # ---- static attributes
    def __setitem__(self, key, attributes):
        """Sets the static attributes of `key` (replacing those it had), as steps that join the
        table see them."""
        self._set_static(key, attributes)

    def __getitem__(self, key):
        """The static attributes the table holds for `key`, or None if it holds none."""
        return self._get_static(key)

    def _get_static(self, key):
        """The static attributes held for `key` (a dict), or None if there are none."""
        return self._static.get(table_key(key))

    def _set_static(self, key, attributes):
        """Replaces the static attributes of `key`."""
        key = table_key(key)
        if self._persists:
            if not isinstance(attributes, dict):
                raise TypeError(
                    f"{self!r}: static attributes must be a dict to be stored, got "
                    f"{type(attributes).__name__} for key {key!r}"
                )
            old = self._static.get(key)
            if isinstance(old, dict):
                gone = old.keys() - attributes.keys()
                if gone:
                    self._removed.setdefault(key, set()).update(gone)
            self._pending[key] = dict(attributes)
            self._partial.discard(key)
            self._absent.discard(key)
            self._changed()
        self._static[key] = attributes

    def _update_static(self, key, attributes):
        """Adds `attributes` to those of `key` (replacing same-named ones)."""
        if not isinstance(attributes, dict):
            self._set_static(key, attributes)
            return
        key = table_key(key)
        current = self._static.get(key)
        if not isinstance(current, dict):
            if current is None and self._persists and key not in self._absent:
                # the storage may hold attributes of this key that are not loaded yet
                self._partial.add(key)
            current = self._static[key] = {}
        current.update(attributes)
        if self._persists:
            removed = self._removed.get(key)
            if removed:
                removed.difference_update(attributes)
            self._pending.setdefault(key, {}).update(attributes)
            self._changed()

    def _container_and_path(self):
        """(container, path in it) of the table's path, as storey 1.0.6's driver hooks take them."""
        container, _, inner = self._table_path.lstrip("/").partition("/")
        return container, "/" + inner

    # ---- loading
    async def _ensure_loaded(self, keys):
        """Loads, in one driver call, what the storage holds for those of `keys` the table has not
        loaded yet."""
        if not self._persists:
            return
        await self._settle(wait=False)
        static = self._static
        partial = self._partial
        absent = self._absent
        wanted = []
        seen = set()
        for key in keys:
            key = table_key(key)
            if key is None or key in seen:
                continue
            seen.add(key)
            if (key in static and key not in partial) or key in absent:
                continue
            wanted.append(key)
        if wanted:
            await self._load(wanted)

    async def _aggregation_slots(self, keys, groups):
        """The rows of `keys` in the arrays of `groups` (an int64 array, one per event), new keys
        getting new rows; over a storage, the state it holds for keys the groups have not loaded
        yet is put in them first (one driver call)."""
        state = self._aggregation_state
        if self._max_keys is not None or self._since_idle_check >= _IDLE_CHECK_EVERY:
            await self._let_go()
        slots = state.slots_of(keys)
        if self._max_keys is not None:
            state.touch(slots)
        if self._persists or self._packed:
            await self._settle(wait=False)
            missing = np.zeros(len(slots), dtype=bool)
            for group in groups:
                missing |= ~group.loaded[slots]
            if missing.any():
                await self._load([state.keys[slot] for slot in np.unique(slots[missing]).tolist()])
        return slots

    async def _load(self, keys):
        """Loads static attributes and aggregation state of `keys` (table form, distinct)."""
        if not self._persists:
            # keys let go of a table in memory come back from their packed state
            packed = self._packed
            found = {key: StoredKey(None, packed.pop(key)) for key in keys if key in packed}
            self._put_aggregations(keys, found)
            return
        names = await self._check_schema()
        found = await self._call(self._read, keys, names)
        self._put_static(keys, found)
        if names:
            self._put_aggregations(keys, found)

    async def _check_schema(self):
        """The names of the aggregators on the table, each checked (once) against the description
        of the state the storage holds for it: a different aggregator of the same name is refused,
        a new one starts empty (its description is saved with its first state)."""
        state = self._aggregation_state
        if state is None or not state.groups:
            return []
        stored_schema = self._stored_aggregators()
        names = []
        for group in state.groups:
            for layout in group.layouts:
                name = layout.aggregator.name
                names.append(name)
                if name in self._checked:
                    continue
                description = describe(layout)
                stored = stored_schema.get(name)
                if stored is None:
                    self._new_schema[name] = description
                else:
                    different = difference(stored, description)
                    if different:
                        raise ValueError(
                            f"Table {self._table_path!r}: aggregator {name!r} differs from the one whose "
                            f"state the table holds ({different}); aggregate into another table, or "
                            "with the same aggregator"
                        )
                self._checked.add(name)
        return names

    def _stored_aggregators(self):
        """The descriptions of the aggregators whose state the storage holds, by name (read once;
        in the calling thread, when a flow starts or at its first load)."""
        if not self._persists:
            return {}
        if self._stored_schema is None:
            self._stored_schema = dict(self._read_schema())
        return self._stored_schema

    def _read(self, keys, names):
        return self._retrying(lambda: self._storage._load_keys(self, keys, names), "load", keys)

    def _read_schema(self):
        return self._retrying(
            lambda: self._storage._load_aggregation_schema(self), "load the aggregator descriptions", []
        )

    def _put_static(self, keys, found):
        static = self._static
        partial = self._partial
        for key in keys:
            stored = found.get(key)
            attributes = stored.attributes if stored is not None else None
            if key in partial:
                partial.discard(key)
                if attributes:
                    held = static.get(key)
                    static[key] = {**attributes, **held} if isinstance(held, dict) else held
            elif key in static:
                continue
            elif attributes is None:
                self._absent.add(key)
            else:
                static[key] = attributes

    def _put_aggregations(self, keys, found):
        """Puts the stored state of `keys` in the rows of the groups that have not loaded it."""
        state = self._aggregation_state
        # every loaded key gets its rows, so that the groups know it loaded
        slots = state.slots_of(keys)
        stored = [(key, slot) for key, slot in zip(keys, slots.tolist(), strict=True) if key in found]
        for group in state.groups:
            fresh = ~group.loaded[slots]
            group.loaded[slots] = True
            if not stored:
                continue
            new = set(slots[fresh].tolist())
            for layout in group.layouts:
                name = layout.aggregator.name
                rows = [(slot, found[key].aggregations.get(name)) for key, slot in stored if slot in new]
                rows = [(slot, block) for slot, block in rows if block is not None]
                if rows:
                    where = f"Table {self._table_path!r}: aggregator {name!r}"
                    floats, ints = layout.unpack([f for _, (f, _) in rows], [i for _, (_, i) in rows], where)
                    group.put(
                        layout, np.fromiter((slot for slot, _ in rows), np.int64, len(rows)), floats, ints
                    )

    async def _call(self, fn, *args):
        """Calls a driver hook: in the flow's own thread when the flow runs inline (it waits for
        the answer anyway), else in a worker thread, off the flow's event loop."""
        runtime = self._runtime
        if runtime is None or runtime.inline:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    # ---- letting keys go
    async def _let_go(self):
        """Lets go of the keys past `max_keys_in_memory` (least recently used first) and of those
        whose windows are all past (checked once as many events as keys were aggregated)."""
        state = self._aggregation_state
        held = len(state.slots)
        chosen = []
        if self._max_keys is not None and held > self._max_keys:
            slots = np.fromiter(state.slots.values(), np.int64, held)
            # down to 90% of the bound, so that this happens once every many batches
            count = held - max(1, self._max_keys * 9 // 10)
            chosen.append(slots[np.argsort(state.stamps[slots], kind="stable")[:count]])
        if held and self._since_idle_check >= max(held, _IDLE_CHECK_EVERY):
            self._since_idle_check = 0
            chosen.append(_windows_past(state))
        if chosen:
            slots = np.unique(np.concatenate(chosen))
            if len(slots):
                await self._evict(slots)

    async def _evict(self, slots):
        """Lets go of the keys in `slots`: saved first (over a storage; their attributes go too,
        and come back with them) or packed (in memory)."""
        state = self._aggregation_state
        keys = [state.keys[slot] for slot in slots.tolist()]
        if self._persists:
            if self._pending or self._removed or any(group.dirty[slots].any() for group in state.groups):
                await self._flush()
            for key in keys:
                self._static.pop(key, None)
                self._absent.discard(key)
        else:
            packed = self._packed
            for group in state.groups:
                for layout in group.layouts:
                    floats, ints = layout.pack(
                        group.state[slots, layout.offset : layout.end],
                        group.istate[slots, layout.ioffset : layout.iend],
                    )
                    name = layout.aggregator.name
                    for key, f, i in zip(keys, floats, ints, strict=True):
                        packed.setdefault(key, {})[name] = (f, i)
        state.release(slots)

    # ---- writing
    async def _aggregated(self, slots, groups):
        """Called by an aggregation step after the kernels updated the rows `slots` of `groups`."""
        self._since_idle_check += len(slots)
        if not self._persists:
            return
        for group in groups:
            group.dirty[slots] = True
        if self._write_through:
            await self._flush()
        else:
            self._changed()

    async def _written(self):
        """Called by a writing step after each batch: writes through when there is no flush interval."""
        if self._write_through and (self._pending or self._removed):
            await self._flush()

    # ---- flushing
    def _bind(self, runtime):
        """Uses `runtime`'s timers for periodic flushes (the flow that now uses the table)."""
        if self._runtime is not runtime:
            self._cancel_timer()
            self._runtime = runtime
            if self._pending or self._removed or self._any_dirty():
                self._changed()

    def _unbind(self, runtime):
        """Stops using `runtime` (its flow has ended)."""
        if self._runtime is runtime:
            self._cancel_timer()
            self._runtime = None

    def _cancel_timer(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _changed(self):
        if self._timer is not None or self._write_through or not self._persists:
            return
        runtime = self._runtime
        if runtime is None or getattr(runtime, "loop", None) is None:
            return
        self._timer = runtime.schedule(self._flush_interval_secs, self._flush_on_timer)

    async def _flush_on_timer(self):
        self._timer = None
        await self._flush(wait=False)

    def _any_dirty(self):
        state = self._aggregation_state
        return state is not None and any(group.dirty.any() for group in state.groups)

    async def _flush(self, wait=True):
        """Saves every changed key: hands them to the writing thread, for one driver call. With
        `wait`, returns once they are saved, and raises when they could not be."""
        if not self._persists:
            return
        if self._in_flight is not None:
            if not wait and not self._in_flight[0].done():
                # one flush at a time: these changes wait for the next interval
                self._changed()
                return
            await self._settle(wait=True)
        taken = self._take_changes()
        if taken is not None:
            changes, undo = taken
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="storey-flush")
            self._in_flight = (self._writer.submit(self._write, changes), undo)
        if wait:
            await self._settle(wait=True)

    def _take_changes(self):
        """What the next flush saves (a `Changes`; the table counts its keys as saved from then
        on) and a function that puts it back if the flush fails; None when nothing changed."""
        pending, removed = self._pending, self._removed
        self._pending, self._removed = {}, {}
        attributes = {key: (attrs, removed.get(key, ())) for key, attrs in pending.items()}
        for key, names in removed.items():
            if key not in attributes:
                attributes[key] = ({}, names)
        aggregations = []
        taken = []
        state = self._aggregation_state
        if state is not None:
            for group in state.groups:
                slots, floats, ints = group.take_dirty(len(state.keys))
                if not len(slots):
                    continue
                taken.append((group, slots))
                keys = [state.keys[slot] for slot in slots.tolist()]
                for layout in group.layouts:
                    floats_block = floats[:, layout.offset : layout.end]
                    ints_block = ints[:, layout.ioffset : layout.iend]
                    # packed in their stored form by the writing thread (see _write)
                    aggregations.append(AggregatorRows(layout, keys, floats_block, ints_block))
        if not attributes and not aggregations:
            return None
        written = {rows.name.aggregator.name for rows in aggregations}
        schema = {name: description for name, description in self._new_schema.items() if name in written}

        def undo():
            # changes made since win over those that failed
            for key, (attrs, names) in attributes.items():
                newer = self._pending.get(key)
                self._pending[key] = {**attrs, **newer} if newer else attrs
                if names:
                    self._removed.setdefault(key, set()).update(set(names) - self._pending[key].keys())
            for group, slots in taken:
                group.dirty[slots] = True

        return Changes(attributes, aggregations, schema), undo

    def _write(self, changes):
        """Saves `changes` (in the writing thread), its aggregation rows packed in their stored
        form; returns the descriptions it saved."""
        packed = []
        for rows in changes.aggregations:
            floats, ints = rows.name.pack(rows.floats, rows.ints)
            packed.append(AggregatorRows(rows.name.aggregator.name, rows.keys, floats, ints))
        changes = changes._replace(aggregations=packed)
        self._retrying(lambda: self._storage._save_keys(self, changes), "save", changes.keys())
        return changes.schema

    def _retrying(self, call, what, keys):
        """`call()`, again after a transient error (see Driver._is_transient), waiting longer each
        time; a failure raises an error naming the table, what could not be done and the keys."""
        driver = self._storage
        delay = driver._backoff_secs
        attempt = 0
        while True:
            try:
                return call()
            except Exception as ex:
                if attempt < driver._retries and driver._is_transient(ex):
                    attempt += 1
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise self._storage_error(what, keys, ex, attempt + 1) from ex

    def _storage_error(self, what, keys, ex, attempts):
        """The error of a load or save that failed: of the storage error's type when that type
        takes a message (FlowError otherwise), naming the table, the keys and the cause."""
        named = ", ".join(repr(key) for key in keys[:_KEYS_NAMED])
        more = f" and {len(keys) - _KEYS_NAMED} more" if len(keys) > _KEYS_NAMED else ""
        which = f" {len(keys)} key{'s' if len(keys) > 1 else ''} ({named}{more})" if keys else ""
        tries = f" (tried {attempts} times)" if attempts > 1 else ""
        preposition = "to" if what == "save" else "from"
        message = (
            f"Table {self._table_path!r}: could not {what}{which} {preposition} {self._storage._describe()}"
            f"{tries}: {type(ex).__name__}: {ex}"
        )
        try:
            return type(ex)(message)
        except Exception:
            return FlowError(message)

    async def _settle(self, wait):
        """Takes the outcome of the flush being written, if it is done (once it is, with `wait`):
        the descriptions it saved count as stored; when it failed, its changes are put back, for a
        later flush, and its error is raised."""
        if self._in_flight is None:
            return
        future, undo = self._in_flight
        if not future.done():
            if not wait:
                return
            runtime = self._runtime
            if runtime is None or runtime.inline:
                future.exception()
            else:
                await asyncio.wrap_future(future)
        self._in_flight = None
        error = future.exception()
        if error is not None:
            undo()
            raise error
        saved = future.result()
        if self._stored_schema is not None:
            self._stored_schema.update(saved)
        for name in saved:
            self._new_schema.pop(name, None)

    async def _end_flow(self, flush):
        """Called by each step using the table when its flow terminates (`flush` for steps that
        write): starts saving what has changed; the flow's termination then waits for it (while
        the steps after this one finish) and lets the storage release the flow's connections."""
        if flush:
            await self._flush(wait=False)
        at_end = getattr(self._runtime, "at_end", None)
        if at_end is None:
            await self._finish()
        elif self._finish not in at_end:
            at_end.append(self._finish)

    async def _finish(self):
        await self._flush()
        await self._storage._end_flow()

    async def close(self):
        """Flushes what has changed and closes the storage connection."""
        self._cancel_timer()
        await self._flush()
        if self._writer is not None:
            self._writer.shutdown()
            self._writer = None
        await self._storage.close()


def resolve_table(step_name, table, context):
    """The `Table` a step was given: a Table, or the name of one held by the step's `context`."""
    if isinstance(table, Table):
        return table
    if isinstance(table, str):
        if context is None:
            raise TypeError(
                f"{step_name}: table {table!r} is a name, but no context was provided to the step "
                "to look it up"
            )
        try:
            found = context.get_table(table)
        except KeyError:
            raise ValueError(f"{step_name}: the context holds no table named {table!r}") from None
        if not isinstance(found, Table):
            raise TypeError(f"{step_name}: context table {table!r} is a {type(found).__name__}, not a Table")
        return found
    raise TypeError(
        f"{step_name}: table must be a Table or a table name, got {type(table).__name__}: {table!r}"
    )
