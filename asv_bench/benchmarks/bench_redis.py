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

import numpy as np
import pandas as pd

from storey import (
    AggregateByKey,
    Complete,
    DataframeSource,
    NoopDriver,
    ParquetSource,
    ParquetTarget,
    QueryByKey,
    RedisDriver,
    Reduce,
    SyncEmitSource,
    Table,
    build_flow,
)

from .bench_aggregation import _frame, _load_kernels
from .bench_durable import KEYS, LIVE, N, _aggregators

# the tests' throw-away redis-server (tests/support/servers.py), from the repository this file is in
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.support.servers import RedisServer  # noqa: E402


def _backfill(source_path, out, table):
    build_flow(
        [
            ParquetSource(source_path, key_field="user", time_field="time"),
            AggregateByKey(_aggregators(), table),
            ParquetTarget(out),
        ]
    ).run().await_termination()


def _server_with(dump):
    """A redis-server started on a copy of the saved database `dump`."""
    server = RedisServer()
    shutil.copy(dump, os.path.join(server.folder, "dump.rdb"))
    return server.start()


def _backfilled_dump(folder):
    """The 1M-event backfill saved by a redis-server, as its dump.rdb in `folder`."""
    server = RedisServer().start()
    try:
        frame = _frame(n=N, keys=KEYS)
        table = Table("features", RedisDriver(redis_url=server.url))
        source = DataframeSource(frame, key_field="user", time_field="time")
        build_flow([source, AggregateByKey(_aggregators(), table)]).run().await_termination()
        server.stop(save=True)
        dump = os.path.join(folder, "dump.rdb")
        shutil.copy(os.path.join(server.folder, "dump.rdb"), dump)
        return dump
    finally:
        server.remove()


class Backfill:
    timeout = 900
    number = 1
    repeat = 7
    warmup_time = 0

    def setup_cache(self):
        folder = os.path.abspath("bench-redis")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "events.parquet")
        _frame().to_parquet(path)
        return path

    def setup(self, path):
        self.folder = tempfile.mkdtemp()
        self.server = RedisServer().start()
        _load_kernels()

    def teardown(self, path):
        self.server.remove()
        shutil.rmtree(self.folder, ignore_errors=True)

    def time_into_memory(self, path):
        _backfill(path, os.path.join(self.folder, "memory.parquet"), Table("features", NoopDriver()))

    def time_into_redis(self, path):
        # a new table each run: the whole state is written, as by a first backfill
        table = Table(f"features-{time.monotonic_ns()}", RedisDriver(redis_url=self.server.url))
        _backfill(path, os.path.join(self.folder, "redis.parquet"), table)


class LiveUnloadedKeys:
    """Each run opens the table in a new Table object, on a server started afresh on the
    backfill (setup runs before each repeat): the keys are not loaded yet."""

    timeout = 900
    number = 1
    repeat = 5
    warmup_time = 0

    def setup_cache(self):
        folder = os.path.abspath("bench-redis-live")
        os.makedirs(folder, exist_ok=True)
        return _backfilled_dump(folder)

    def setup(self, dump):
        _load_kernels()
        self.server = _server_with(dump)
        rng = np.random.default_rng(1)
        start = pd.Timestamp("2024-01-02", tz="UTC")
        self.events = [
            ({"amount": float(amount)}, f"user{user}", start + pd.Timedelta(seconds=i))
            for i, (user, amount) in enumerate(
                zip(rng.permutation(KEYS)[:LIVE], rng.random(LIVE) * 100, strict=True)
            )
        ]

    def teardown(self, dump):
        self.server.remove()

    def _run(self):
        # setup started the server on the backfill: none of its keys is loaded by this process
        table = Table("features", RedisDriver(redis_url=self.server.url))
        controller = build_flow([SyncEmitSource(), AggregateByKey(_aggregators(), table), Complete()]).run()
        latencies = np.empty(len(self.events))
        clock = time.perf_counter
        for i, (body, key, when) in enumerate(self.events):
            start = clock()
            controller.emit(body, key=key, event_time=when).await_result()
            latencies[i] = clock() - start
        controller.terminate()
        controller.await_termination()
        return latencies

    def time_awaited_emits_first_touch(self, dump):
        self._run()

    def track_p50_latency_us(self, dump):
        return float(np.percentile(self._run(), 50) * 1e6)

    track_p50_latency_us.unit = "us"

    def track_p99_latency_us(self, dump):
        return float(np.percentile(self._run(), 99) * 1e6)

    track_p99_latency_us.unit = "us"


class QueryAllKeys:
    timeout = 900

    def setup_cache(self):
        folder = os.path.abspath("bench-redis-query")
        os.makedirs(folder, exist_ok=True)
        return _backfilled_dump(folder)

    def setup(self, dump):
        _load_kernels()
        self.server = _server_with(dump)
        when = pd.Timestamp("2024-01-02", tz="UTC")
        self.queries = pd.DataFrame({"user": [f"user{i}" for i in range(KEYS)], "time": [when] * KEYS})

    def teardown(self, dump):
        self.server.remove()

    def time_query_10k_keys(self, dump):
        table = Table("features", RedisDriver(redis_url=self.server.url))
        source = DataframeSource(self.queries, key_field="user", time_field="time")
        build_flow(
            [source, QueryByKey(["amount_sum_24h"], table), Reduce(0, lambda n, _: n + 1)]
        ).run().await_termination()
