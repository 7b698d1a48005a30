"""The events, flows and measures shared by the benchmarks of tables that keep their state
(bench_durable: SQLite, bench_redis: Redis, bench_v3io: V3IO), each beside the in-memory table.
No benchmark is defined here."""

import os
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
    Reduce,
    SyncEmitSource,
    Table,
    build_flow,
)
from storey.dtypes import FieldAggregator, SlidingWindows

from .bench_aggregation import _frame

N = 1_000_000
KEYS = 10_000
LIVE = 5_000


def aggregators():
    windows = SlidingWindows(["1h", "6h", "24h"], "10m")
    return [FieldAggregator("amount", "amount", ["sum", "count", "avg", "min", "max"], windows)]


def write_events(folder):
    """The backfill's events (N over KEYS keys), written as Parquet in `folder` (made if need be,
    below the working directory); returns the file's path."""
    folder = os.path.abspath(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "events.parquet")
    _frame().to_parquet(path)
    return path


def backfill(source_path, out, table):
    """Parquet -> AggregateByKey (into `table`) -> Parquet."""
    build_flow(
        [
            ParquetSource(source_path, key_field="user", time_field="time"),
            AggregateByKey(aggregators(), table),
            ParquetTarget(out),
        ]
    ).run().await_termination()


def backfill_into_memory(source_path, folder):
    """The backfill into the in-memory table (NoopDriver), its output in `folder`: the measure
    each kept state is compared with."""
    backfill(source_path, os.path.join(folder, "memory.parquet"), Table("features", NoopDriver()))


def aggregate_into(table, n=N, keys=KEYS):
    """Leaves in `table` the state of a backfill of `n` events over `keys` keys."""
    source = DataframeSource(_frame(n=n, keys=keys), key_field="user", time_field="time")
    build_flow([source, AggregateByKey(aggregators(), table)]).run().await_termination()


def unloaded_key_events():
    """LIVE events after the backfill, a second apart, each on another of its keys."""
    rng = np.random.default_rng(1)
    start = pd.Timestamp("2024-01-02", tz="UTC")
    return [
        ({"amount": float(amount)}, f"user{user}", start + pd.Timedelta(seconds=i))
        for i, (user, amount) in enumerate(
            zip(rng.permutation(KEYS)[:LIVE], rng.random(LIVE) * 100, strict=True)
        )
    ]


def awaited_latencies(table, events):
    """Emits `events` ((body, key, time) triples) one at a time through SyncEmitSource ->
    AggregateByKey on `table` -> Complete, awaiting each one's features; returns the seconds each
    took."""
    controller = build_flow([SyncEmitSource(), AggregateByKey(aggregators(), table), Complete()]).run()
    latencies = np.empty(len(events))
    clock = time.perf_counter
    for i, (body, key, when) in enumerate(events):
        start = clock()
        controller.emit(body, key=key, event_time=when).await_result()
        latencies[i] = clock() - start
    controller.terminate()
    controller.await_termination()
    return latencies


def key_queries(keys):
    """One query for each of the keys user0..user{keys-1}, a day after the backfill began."""
    when = pd.Timestamp("2024-01-02", tz="UTC")
    return pd.DataFrame({"user": [f"user{i}" for i in range(keys)], "time": [when] * keys})


def query_all(table, queries):
    """QueryByKey of amount_sum_24h for each of `queries` (one batch), the results counted."""
    source = DataframeSource(queries, key_field="user", time_field="time")
    build_flow(
        [source, QueryByKey(["amount_sum_24h"], table), Reduce(0, lambda n, _: n + 1)]
    ).run().await_termination()


class _AwaitedFirstTouches:
    """The benchmarks of awaited emits on keys no process has loaded yet, for a class whose
    `_latencies(cache)` gives the latencies of one run of `awaited_latencies` on such a table."""

    def time_awaited_emits_first_touch(self, cache):
        self._latencies(cache)

    def track_p50_latency_us(self, cache):
        return float(np.percentile(self._latencies(cache), 50) * 1e6)

    track_p50_latency_us.unit = "us"

    def track_p99_latency_us(self, cache):
        return float(np.percentile(self._latencies(cache), 99) * 1e6)

    track_p99_latency_us.unit = "us"
