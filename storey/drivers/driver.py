"""Driver: the base class of table storage drivers, and what a driver loads and saves (see
`storey.drivers` for the contract)."""

from typing import NamedTuple

from .async_bridge import AsyncBridge

__all__ = ["AggregatorRows", "Changes", "Driver", "StoredKey"]

# storey 1.0.6's per-key driver hooks; a subclass that overrides them is driven through them
_LEGACY_STATIC_HOOKS = ("_save_key", "_load_by_key")
_LEGACY_AGGREGATION_HOOKS = ("_load_aggregates_by_key", "_save_schema", "_load_schema")


class StoredKey(NamedTuple):
    """What a storage holds for one key: its static attributes (a dict, None when it holds none)
    and, per aggregator name, the key's state of that aggregator: (floats, ints), two bytes values
    as a flush gave them (see `AggregatorRows`)."""

    attributes: dict | None
    aggregations: dict


class AggregatorRows(NamedTuple):
    """The changed state of one aggregator: `floats[i]` and `ints[i]` (bytes) are the state of
    `keys[i]`, in the stored form of `storey.table.aggregation_state` (opaque to drivers)."""

    name: str
    keys: list
    floats: object
    ints: object


class Changes(NamedTuple):
    """What one flush saves, all or nothing.

    - `attributes`: key -> (attributes to set, names of attributes to remove);
    - `aggregations`: a list of `AggregatorRows`;
    - `schema`: aggregator name -> description (a JSON-able dict) of the aggregators whose
      description the storage does not hold yet (empty when none), saved with their state.
    """

    attributes: dict
    aggregations: list
    schema: dict

    def keys(self):
        """Every key this flush writes, in first-seen order."""
        keys = dict.fromkeys(self.attributes)
        for rows in self.aggregations:
            keys.update(dict.fromkeys(rows.keys))
        return list(keys)


class Driver:
    """Abstract class for database connection.

    A driver stores what `Table`s hold per key. Subclasses implement the hooks below; see
    `storey.drivers` for the contract they follow.
    """

    # False for drivers that keep nothing, so that tables need not track what to save
    _persists = True
    # how often a flush that failed on a transient error (see `_is_transient`) is tried again,
    # waiting `_backoff_secs`, doubled each time, in between
    _retries = 5
    _backoff_secs = 0.1
    # see _bridge
    _async_bridge = None

    def _load_keys(self, table, keys, aggregators):
        """What the storage holds for each of `keys` (table-form keys) of `table`: a dict key ->
        `StoredKey`, with the state of those of the aggregator names `aggregators` it holds. Keys
        it holds nothing for are left out."""
        if self._overrides(_LEGACY_STATIC_HOOKS):
            return self._load_through_legacy_hooks(table, keys)
        return {}

    def _load_aggregation_schema(self, table):
        """The descriptions of the aggregators whose state the storage holds for `table`: a dict
        aggregator name -> description, empty when none."""
        return {}

    def _save_keys(self, table, changes):
        """Saves `changes` (a `Changes`) of `table`, all or nothing: when this raises, nothing of
        it is saved."""
        if self._overrides(_LEGACY_STATIC_HOOKS):
            self._save_through_legacy_hooks(table, changes)

    def _is_transient(self, error):
        """Whether `error`, raised by a save, may not happen again (a dropped connection, a
        restarting server): the flush is then tried again."""
        return False

    def _describe(self):
        """How errors name this driver and where it stores."""
        return type(self).__name__

    async def close(self):
        """Closes the connection, if any."""
        await self._end_flow()

    async def _end_flow(self):
        """Called when a flow using the driver terminates: releases its connections (a later flow
        opens them again)."""
        bridge = self._async_bridge
        if bridge is not None:
            self._async_bridge = None
            bridge.close()

    # ---- storey 1.0.6's per-key hooks, for drivers written against them
    def _overrides(self, hooks):
        cls = type(self)
        return any(getattr(cls, hook, None) is not getattr(Driver, hook, None) for hook in hooks)

    def _unsupported_aggregation_hooks(self):
        """The storey 1.0.6 aggregation hooks this driver overrides (its aggregation state cannot
        be stored through them: their format is storey 1.0.6's objects)."""
        cls = type(self)
        if cls._load_keys is not Driver._load_keys or cls._save_keys is not Driver._save_keys:
            return []
        return [hook for hook in _LEGACY_AGGREGATION_HOOKS if getattr(cls, hook, None) is not None]

    def _bridge(self):
        """The event loop (in a thread of its own) this driver's coroutines run on."""
        bridge = self._async_bridge
        if bridge is None:
            bridge = self._async_bridge = AsyncBridge(f"storey-{type(self).__name__}")
        return bridge

    def _load_through_legacy_hooks(self, table, keys):
        container, path = table._container_and_path()

        async def load_all():
            return [await self._load_by_key(container, path, key, "*") for key in keys]

        found = self._bridge().run(load_all())
        return {key: StoredKey(dict(attrs), {}) for key, attrs in zip(keys, found, strict=True) if attrs}

    def _save_through_legacy_hooks(self, table, changes):
        container, path = table._container_and_path()
        full = {key: table._get_static(key) for key in changes.attributes}

        async def save_all():
            for key, attributes in full.items():
                await self._save_key(container, path, key, None, table._partitioned_by_key, attributes)

        self._bridge().run(save_all())
