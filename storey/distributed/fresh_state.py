"""A partition's table over the --table storage, seen empty, so that a rerun task writes the same.

A distributed backfill fills a table that holds no state when it starts (it checks), and each
key's state is written by the one partition that owns the key. When a worker dies midway, Dask
runs the partition's task again; the state the killed attempt may have flushed already must not
be loaded and aggregated a second time. Over `FreshState`, a table loads nothing: the rerun
computes every key's state from its events alone and overwrites what the killed attempt wrote
(state is written whole), which makes the task's writes idempotent.
"""

from storey.drivers import Driver


class FreshState(Driver):
    """A driver whose keys read as absent, writing through to `driver`.

    Loads still ask `driver` (and discard the answer): a driver that checks versions on write
    (`RedisDriver`) learns the version it must expect, including a killed attempt's. The stored
    aggregator descriptions are `driver`'s: a different aggregator of the same name is refused.
    """

    def __init__(self, driver):
        self._driver = driver
        self._persists = driver._persists
        self._retries = driver._retries
        self._backoff_secs = driver._backoff_secs

    def _load_keys(self, table, keys, aggregators):
        self._driver._load_keys(table, keys, aggregators)
        return {}

    def _load_aggregation_schema(self, table):
        return self._driver._load_aggregation_schema(table)

    def _save_keys(self, table, changes):
        self._driver._save_keys(table, changes)

    def _is_transient(self, error):
        return self._driver._is_transient(error)

    def _describe(self):
        return self._driver._describe()

    async def _end_flow(self):
        await self._driver._end_flow()

    async def close(self):
        await self._driver.close()
