"""Tables in Redis (RedisDriver on a redis-server each benchmark starts on a free loopback port,
keeping nothing on disk), beside the in-memory table (NoopDriver):

- backfill: Parquet -> AggregateByKey (sum, count, avg, min, max over sliding 1h/6h/24h in 10m
  buckets: 15 features) -> Parquet, 1M events over 10k keys, into an empty Redis (every key's
  final state saved when the flow ends) and into memory; the ratio is the cost of keeping the
  state in Redis;
- live: awaited emits through SyncEmitSource -> AggregateByKey -> Complete on a Redis table
  holding that backfill, none of whose keys this process has loaded yet (each first touch loads
  the key), latency tracked;
- query: QueryByKey over the 10k keys of that table (one batch: one pipelined load).

Needs redis-server (Debian's package) and the redis package (storey[redis]). Run with
`cd asv_bench && asv run --python=same -b bench_redis`.
"""

import os
import shutil
import sys
import tempfile
import time

from storey import RedisDriver, Table

from . import _state_tables as shared
from ._state_tables import _AwaitedFirstTouches
from .bench_aggregation import _load_kernels

# the tests' throw-away redis-server (tests/support/servers.py), from the repository this file is in
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.support.servers import RedisServer  # noqa: E402


def _server_with(dump):
    """A redis-server started on a copy of the saved database `dump`."""
    server = RedisServer()
    shutil.copy(dump, os.path.join(server.folder, "dump.rdb"))
    return server.start()


def _backfilled_dump(folder):
    """The 1M-event backfill saved by a redis-server, as its dump.rdb in `folder` (made if need be)."""
    folder = os.path.abspath(folder)
    os.makedirs(folder, exist_ok=True)
    with RedisServer() as server:
        shared.aggregate_into(Table("features", RedisDriver(redis_url=server.url)))
        server.stop(save=True)
        dump = os.path.join(folder, "dump.rdb")
        shutil.copy(os.path.join(server.folder, "dump.rdb"), dump)
        return dump


class Backfill:
    timeout = 900
    number = 1
    repeat = 7
    warmup_time = 0

    def setup_cache(self):
        return shared.write_events("bench-redis")

    def setup(self, path):
        self.folder = tempfile.mkdtemp()
        self.server = RedisServer().start()
        _load_kernels()

    def teardown(self, path):
        self.server.remove()
        shutil.rmtree(self.folder, ignore_errors=True)

    def time_into_memory(self, path):
        shared.backfill_into_memory(path, self.folder)

    def time_into_redis(self, path):
        # a new table each run: the whole state is written, as by a first shared.backfill
        table = Table(f"features-{time.monotonic_ns()}", RedisDriver(redis_url=self.server.url))
        shared.backfill(path, os.path.join(self.folder, "redis.parquet"), table)


class LiveUnloadedKeys(_AwaitedFirstTouches):
    """Each run opens the table in a new Table object, on a server started afresh on the
    backfill (setup runs before each repeat): the keys are not loaded yet."""

    timeout = 900
    number = 1
    repeat = 5
    warmup_time = 0

    def setup_cache(self):
        return _backfilled_dump("bench-redis-live")

    def setup(self, dump):
        _load_kernels()
        self.server = _server_with(dump)
        self.events = shared.unloaded_key_events()

    def teardown(self, dump):
        self.server.remove()

    def _latencies(self, dump):
        # setup started the server on the backfill: none of its keys is loaded by this process
        return shared.awaited_latencies(
            Table("features", RedisDriver(redis_url=self.server.url)), self.events
        )


class QueryAllKeys:
    timeout = 900

    def setup_cache(self):
        return _backfilled_dump("bench-redis-query")

    def setup(self, dump):
        _load_kernels()
        self.server = _server_with(dump)
        self.queries = shared.key_queries(shared.KEYS)

    def teardown(self, dump):
        self.server.remove()

    def time_query_10k_keys(self, dump):
        shared.query_all(Table("features", RedisDriver(redis_url=self.server.url)), self.queries)
