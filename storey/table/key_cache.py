"""Table: per-key state (static attributes and window aggregations) over a storage driver.

Steps use a table through a small internal interface:

- reading: `await table._ensure_loaded(keys)` once per batch (one driver call for every key the
  table does not hold yet), then `table._get_static(key)` per event;
- writing: `table._update_static(key, attrs)` (merge) or `table._set_static(key, attrs)`
  (replace) per event, then `await table._written()` once per batch (writes through at once when
  `flush_interval_secs` is None);
- life cycle: `table._bind(runtime)` in `_init` (periodic flushes use the flow's timers),
  `await table._end_flow(flush)` in `_on_terminate` (flush=True for steps that write),
  `table._unbind(runtime)` in `_close`.

Window-aggregation state lives in `table._aggregation_state` (`storey.table.aggregation_state`),
in memory only for now: drivers store static attributes.
"""

from ..core.checks import check_seconds
from ..drivers.driver import Driver

__all__ = ["Table"]


def table_key(key):
    """The form a key takes inside a table: list keys become their items joined with '.'."""
    if isinstance(key, list):
        return ".".join(str(part) for part in key)
    return key


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
    """

    def __init__(
        self,
        table_path: str,
        storage: Driver,
        partitioned_by_key: bool = True,
        flush_interval_secs: int | None = 300,
        max_updates_in_flight: int = 8,
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
        self._table_path = table_path
        self._storage = storage
        self._partitioned_by_key = bool(partitioned_by_key)
        self._flush_interval_secs = flush_interval_secs
        # None (and 0, which the reference takes the same way) writes every change through at once
        self._write_through = not flush_interval_secs
        self._max_updates_in_flight = max_updates_in_flight
        # key (table form) -> static attributes
        self._static = {}
        # window-aggregation state, owned by storey.aggregations
        self._aggregation_state = None
        self._persists = storage._persists
        # keys the storage is known to hold nothing for
        self._absent = set()
        # keys written before what the storage holds for them was loaded
        self._partial = set()
        # what the next flush saves: key -> attributes to set, key -> attribute names to remove
        self._pending = {}
        self._removed = {}
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

    async def _ensure_loaded(self, keys):
        """Loads, in one driver call, what the storage holds for those of `keys` the table has not
        loaded yet."""
        if not self._persists:
            return
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
        if not wanted:
            return
        loaded = await self._storage._load_static(self, wanted)
        for key in wanted:
            stored = loaded.get(key)
            if key in partial:
                partial.discard(key)
                if stored:
                    held = static.get(key)
                    static[key] = {**stored, **held} if isinstance(held, dict) else held
            elif stored is None:
                absent.add(key)
            else:
                static[key] = stored

    # ---- flushing
    def _bind(self, runtime):
        """Uses `runtime`'s timers for periodic flushes (the flow that now uses the table)."""
        if self._runtime is not runtime:
            self._cancel_timer()
            self._runtime = runtime
            if self._pending or self._removed:
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
        if self._timer is not None or self._write_through:
            return
        runtime = self._runtime
        if runtime is None or getattr(runtime, "loop", None) is None:
            return
        self._timer = runtime.schedule(self._flush_interval_secs, self._flush_on_timer)

    async def _flush_on_timer(self):
        self._timer = None
        await self._flush()

    async def _written(self):
        """Called by a writing step after each batch: writes through when there is no flush interval."""
        if self._write_through and (self._pending or self._removed):
            await self._flush()

    async def _flush(self):
        """Saves every changed key to the storage, in one driver call."""
        if self._pending or self._removed:
            pending, removed = self._pending, self._removed
            self._pending, self._removed = {}, {}
            changes = {key: (attrs, removed.get(key, ())) for key, attrs in pending.items()}
            for key, names in removed.items():
                if key not in changes:
                    changes[key] = ({}, names)
            try:
                await self._storage._save_static(self, changes)
            except BaseException:
                # keep what was not saved for the next flush (newer changes win)
                for key, (attrs, names) in changes.items():
                    newer = self._pending.get(key)
                    self._pending[key] = {**attrs, **newer} if newer else attrs
                    if names:
                        self._removed.setdefault(key, set()).update(set(names) - self._pending[key].keys())
                raise

    async def _end_flow(self, flush):
        """Called by each step using the table when its flow terminates (`flush` for steps that
        write): saves what has changed and releases the storage's connections of that flow."""
        if flush:
            await self._flush()
        await self._storage._end_flow()

    async def close(self):
        """Flushes what has changed and closes the storage connection."""
        self._cancel_timer()
        await self._flush()
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
