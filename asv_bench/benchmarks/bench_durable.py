"""Durable table state (SQLDriver on an SQLite file), beside the in-memory table (NoopDriver):

- backfill: Parquet -> AggregateByKey (sum, count, avg, min, max over sliding 1h/6h/24h in 10m
  buckets) -> Parquet, 1M events over 10k keys, into a fresh SQLite table (every key's final
  state saved when the flow ends) and into memory; the ratio is the cost of keeping the state;
- load: the state of 100k keys read back from the table (a QueryByKey over every key, one batch);
- live: awaited emits through SyncEmitSource -> AggregateByKey -> Complete on a 10k-key table none
  of whose keys this process has loaded yet (each first touch loads the key), latency tracked.

Run with `cd asv_bench && asv run --python=same -b bench_durable`.
"""

import os
import shutil
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
    Reduce,
    SQLDriver,
    SyncEmitSource,
    Table,
    build_flow,
)
from storey.dtypes import FieldAggregator, SlidingWindows

from .bench_aggregation import _frame, _load_kernels

N = 1_000_000
KEYS = 10_000
LOAD_KEYS = 100_000
LIVE = 5_000


def _aggregators():
    windows = SlidingWindows(["1h", "6h", "24h"], "10m")
    return [FieldAggregator("amount", "amount", ["sum", "count", "avg", "min", "max"], windows)]


def _sqlite(folder, name="state.db"):
    return SQLDriver("user", f"sqlite:///{os.path.join(folder, name)}")


def _backfill(source_path, out, table):
    build_flow(
        [
            ParquetSource(source_path, key_field="user", time_field="time"),
            AggregateByKey(_aggregators(), table),
            ParquetTarget(out),
        ]
    ).run().await_termination()


class Backfill:
    timeout = 900

    def setup_cache(self):
        folder = os.path.abspath("bench-durable")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "events.parquet")
        _frame().to_parquet(path)
        return path

    def setup(self, path):
        self.folder = tempfile.mkdtemp()
        _load_kernels()

    def teardown(self, path):
        shutil.rmtree(self.folder, ignore_errors=True)

    def time_into_memory(self, path):
        _backfill(path, os.path.join(self.folder, "memory.parquet"), Table("features", NoopDriver()))

    def time_into_sqlite(self, path):
        # a new file each run: the whole state is written, as by a first backfill
        name = f"state-{time.monotonic_ns()}.db"
        _backfill(
            path, os.path.join(self.folder, "sqlite.parquet"), Table("features", _sqlite(self.folder, name))
        )


class LoadState:
    timeout = 900

    def setup_cache(self):
        folder = os.path.abspath("bench-durable-load")
        os.makedirs(folder, exist_ok=True)
        frame = _frame(n=10 * LOAD_KEYS, keys=LOAD_KEYS)
        source = DataframeSource(frame, key_field="user", time_field="time")
        build_flow(
            [source, AggregateByKey(_aggregators(), Table("features", _sqlite(folder)))]
        ).run().await_termination()
        return folder

    def setup(self, folder):
        _load_kernels()
        when = pd.Timestamp("2024-01-02", tz="UTC")
        self.queries = pd.DataFrame(
            {"user": [f"user{i}" for i in range(LOAD_KEYS)], "time": [when] * LOAD_KEYS}
        )

    def time_load_100k_keys(self, folder):
        table = Table("features", _sqlite(folder))
        source = DataframeSource(self.queries, key_field="user", time_field="time")
        build_flow(
            [source, QueryByKey(["amount_sum_24h"], table), Reduce(0, lambda n, _: n + 1)]
        ).run().await_termination()


class LiveUnloadedKeys:
    """Each run opens the table in a new Table object: the keys are not loaded yet."""

    timeout = 900
    number = 1
    repeat = 5

    def setup_cache(self):
        folder = os.path.abspath("bench-durable-live")
        os.makedirs(folder, exist_ok=True)
        frame = _frame(n=N, keys=KEYS)
        source = DataframeSource(frame, key_field="user", time_field="time")
        build_flow(
            [source, AggregateByKey(_aggregators(), Table("features", _sqlite(folder)))]
        ).run().await_termination()
        return folder

    def setup(self, folder):
        _load_kernels()
        rng = np.random.default_rng(1)
        start = pd.Timestamp("2024-01-02", tz="UTC")
        self.events = [
            ({"amount": float(amount)}, f"user{user}", start + pd.Timedelta(seconds=i))
            for i, (user, amount) in enumerate(
                zip(rng.permutation(KEYS)[:LIVE], rng.random(LIVE) * 100, strict=True)
            )
        ]
        # the copy each run changes, so that every run starts from the backfilled state
        self.work = tempfile.mkdtemp()
        self.latencies = None

    def teardown(self, folder):
        shutil.rmtree(self.work, ignore_errors=True)

    def _run(self, folder):
        copy = os.path.join(self.work, f"state-{time.monotonic_ns()}.db")
        shutil.copy(os.path.join(folder, "state.db"), copy)
        table = Table("features", SQLDriver("user", f"sqlite:///{copy}"))
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

    def time_awaited_emits_first_touch(self, folder):
        self._run(folder)

    def track_p50_latency_us(self, folder):
        return float(np.percentile(self._run(folder), 50) * 1e6)

    track_p50_latency_us.unit = "us"

    def track_p99_latency_us(self, folder):
        return float(np.percentile(self._run(folder), 99) * 1e6)

    track_p99_latency_us.unit = "us"
