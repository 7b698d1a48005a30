"""Table: per-key state (aggregations and static attributes) over a storage driver."""

__all__ = ["Table"]


class Table:
    """Table object, represents a single table in a specific storage.

    :param table_path: path to the table in the storage.
    :param storage: storage driver.
    :param partitioned_by_key: whether the data is partitioned by the key or not; storage drivers
        can optimize writes based on it. Defaults to True.
    :param flush_interval_secs: how often the cache is flushed, in seconds. None flushes every event.
        Default is 300 (5 minutes).
    :param max_updates_in_flight: maximum number of concurrent updates.
    """

    def __init__(
        self, table_path, storage, partitioned_by_key=True, flush_interval_secs=300, max_updates_in_flight=8
    ):
        self._table_path = table_path
        self._storage = storage
        self._partitioned_by_key = partitioned_by_key
        self._flush_interval_secs = flush_interval_secs
        self._max_updates_in_flight = max_updates_in_flight
        self._static = {}
        # window-aggregation state, owned by storey.aggregations
        self._aggregation_state = None

    async def _ensure_loaded(self, keys):
        """Loads from storage what the table holds for `keys` and does not have in memory yet."""

    def _get_static(self, key):
        """The static attributes held for `key` (a dict), or None if there are none."""
        return self._static.get(_hashable(key))

    def _set_static(self, key, attributes):
        self._static[_hashable(key)] = attributes

    def _update_static(self, key, attributes):
        self._static.setdefault(_hashable(key), {}).update(attributes)


def _hashable(key):
    return tuple(key) if isinstance(key, list) else key
