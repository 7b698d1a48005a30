"""AggregateByKey in whole flows, with the features of the issue: sum, count, avg, min and max of
one field over sliding 1h/6h/24h windows with a 10m period, on 1M events over 10k keys (one day).

- backfill: ParquetSource -> AggregateByKey -> ParquetTarget and DataframeSource -> AggregateByKey
  -> ParquetTarget (one file), and DataframeSource -> AggregateByKey -> a sink that keeps nothing
  (no file writing in the timing); asv_bench/compare_polars.py compares the first two with polars;
- live, awaited: `emit(...).await_result()` through SyncEmitSource -> AggregateByKey -> Complete,
  one event at a time (events/s, and the 50th and 99th percentile latency as tracked values);
- live, fire-and-forget: emits through SyncEmitSource -> AggregateByKey, then terminate;
- the first awaited feature: SyncEmitSource -> AggregateByKey -> Complete built, one event
  emitted and its features awaited, the flow terminated.

Warm and cold, in pairs: a `time_*` benchmark runs in a process that has already run the same
flow (modules imported, kernels loaded); the `timeraw_*` of the same name runs it as a user's
process does, in a fresh interpreter (asv times the code it returns in a new process: imports
and kernel loading included, interpreter start-up not). Kernels compiled once before, as on any
machine after its first run: Numba's disk cache is warm, the process is not.

Run with `cd asv_bench && asv run --python=same` (the installed project is measured).
"""

import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from storey import (
    AggregateByKey,
    Complete,
    DataframeSource,
    Flow,
    NoopDriver,
    ParquetSource,
    ParquetTarget,
    SyncEmitSource,
    Table,
    build_flow,
)
from storey.dtypes import FieldAggregator, SlidingWindows
from storey.kernels import loading

N = 1_000_000
KEYS = 10_000
LIVE = 20_000
WINDOWS = ["1h", "6h", "24h"]
PERIOD = "10m"
AGGREGATIONS = ["sum", "count", "avg", "min", "max"]

# the features above as `storey backfill --features` takes them
FEATURES = f"amount:{','.join(AGGREGATIONS)}@{','.join(WINDOWS)}/{PERIOD}"

# timeit, which runs a timeraw benchmark's code, turns the garbage collector off; a user's
# process has it on
GC_ON = "import gc; gc.enable()"


def backfill_script(source, target):
    """The backfill of `Backfill` as a user's script: Parquet -> AggregateByKey -> Parquet."""
    return f"""
from storey import AggregateByKey, NoopDriver, ParquetSource, ParquetTarget, Table, build_flow
from storey.dtypes import FieldAggregator, SlidingWindows

windows = SlidingWindows({WINDOWS!r}, {PERIOD!r})
aggregator = FieldAggregator("amount", "amount", {AGGREGATIONS!r}, windows)
build_flow(
    [
        ParquetSource({source!r}, key_field="user", time_field="time"),
        AggregateByKey([aggregator], Table("features", NoopDriver())),
        ParquetTarget({target!r}),
    ]
).run().await_termination()
"""


def backfill_args(source, target):
    """The backfill of `Backfill` as the command's arguments: `storey backfill ... --quiet`."""
    argv = ["backfill", source, "--key", "user", "--time", "time", "--features", FEATURES]
    return argv + ["--out", target, "--overwrite", "--quiet"]


def backfill_command(source, target):
    """The backfill of `Backfill` as a user runs the command, in a process of its own."""
    return [sys.executable, "-m", "storey", *backfill_args(source, target)]


# a live service's first event: the flow built, one event emitted, its features awaited
FIRST_FEATURE_SCRIPT = f"""
import datetime

from storey import AggregateByKey, Complete, NoopDriver, SyncEmitSource, Table, build_flow
from storey.dtypes import FieldAggregator, SlidingWindows

windows = SlidingWindows({WINDOWS!r}, {PERIOD!r})
aggregator = FieldAggregator("amount", "amount", {AGGREGATIONS!r}, windows)
controller = build_flow(
    [SyncEmitSource(), AggregateByKey([aggregator], Table("features", NoopDriver())), Complete()]
).run()
when = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
features = controller.emit({{"amount": 1.0}}, "user0", when).await_result()
controller.terminate()
controller.await_termination()
assert features["amount_count_1h"] == 1, features
"""


def run_fresh(code):
    """Runs code in a fresh interpreter of this environment, as a user's script."""
    subprocess.run([sys.executable, "-c", code], check=True)


def _frame(n=N, keys=KEYS, days=1, seed=0):
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "ns").astype(np.int64)
    times = start + np.sort(rng.integers(0, days * 86_400 * 10**9, n))
    users = np.array([f"user{i}" for i in range(keys)], dtype=object)[rng.integers(0, keys, n)]
    return pd.DataFrame(
        {"user": users, "time": pd.to_datetime(times, utc=True), "amount": np.round(rng.random(n) * 100, 2)}
    )


def _aggregate():
    windows = SlidingWindows(WINDOWS, PERIOD)
    aggregator = FieldAggregator("amount", "amount", AGGREGATIONS, windows)
    return AggregateByKey([aggregator], Table("features", NoopDriver()))


class _Drop(Flow):
    _takes_batches = True  # its _do takes EventBatches

    async def _do(self, batch):
        pass


def _load_kernels():
    """Loads the compiled kernels (from Numba's disk cache) as a process does once, so that a
    single timed run measures emits, not that."""
    controller = build_flow([SyncEmitSource(), _aggregate()]).run()
    controller.emit({"amount": 1.0}, "user0", dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    controller.terminate()
    controller.await_termination()
    # the interpreted kernels served that event: wait for the compiled ones
    while loading("sliding", wait=1.0):
        pass


class Backfill:
    timeout = 600

    def setup_cache(self):
        folder = os.path.abspath("bench-aggregation")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "events.parquet")
        _frame().to_parquet(path)
        # the kernels of a fresh process's backfill compiled into Numba's disk cache, once
        run_fresh(backfill_script(path, os.path.join(folder, "features.parquet")))
        return path

    def setup(self, path):
        self.out = tempfile.mkdtemp()
        self.frame = pd.read_parquet(path)
        _load_kernels()

    def teardown(self, path):
        shutil.rmtree(self.out, ignore_errors=True)

    def time_parquet_to_parquet(self, path):
        target = ParquetTarget(os.path.join(self.out, "features.parquet"))
        build_flow(
            [ParquetSource(path, key_field="user", time_field="time"), _aggregate(), target]
        ).run().await_termination()

    def track_parquet_to_parquet_rows_per_second(self, path):
        start = time.perf_counter()
        self.time_parquet_to_parquet(path)
        return N / (time.perf_counter() - start)

    track_parquet_to_parquet_rows_per_second.unit = "rows/s"

    def timeraw_parquet_to_parquet(self, path):
        return backfill_script(path, os.path.join(self.out, "features.parquet")), GC_ON

    timeraw_parquet_to_parquet.warmup_time = 0  # a warm-up run would not be cold

    def time_dataframe_to_parquet(self, path):
        target = ParquetTarget(os.path.join(self.out, "features.parquet"))
        source = DataframeSource(self.frame, key_field="user", time_field="time")
        build_flow([source, _aggregate(), target]).run().await_termination()

    def track_dataframe_to_parquet_rows_per_second(self, path):
        start = time.perf_counter()
        self.time_dataframe_to_parquet(path)
        return N / (time.perf_counter() - start)

    track_dataframe_to_parquet_rows_per_second.unit = "rows/s"

    def time_dataframe_to_sink(self, path):
        source = DataframeSource(self.frame, key_field="user", time_field="time")
        build_flow([source, _aggregate(), _Drop()]).run().await_termination()


def _live_events(n=LIVE, keys=KEYS):
    rng = np.random.default_rng(1)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    users = [f"user{i}" for i in rng.integers(0, keys, n)]
    amounts = np.round(rng.random(n) * 100, 2).tolist()
    return [
        ({"amount": a}, u, start + dt.timedelta(seconds=6 * i))
        for i, (u, a) in enumerate(zip(users, amounts))
    ]


class LiveAwaited:
    timeout = 300

    def setup(self):
        self.events = _live_events()
        self.latencies = []
        _load_kernels()

    def _run(self):
        controller = build_flow([SyncEmitSource(), _aggregate(), Complete()]).run()
        emit = controller.emit
        latencies = []
        clock = time.perf_counter
        for body, key, when in self.events:
            start = clock()
            emit(body, key, when).await_result()
            latencies.append(clock() - start)
        controller.terminate()
        controller.await_termination()
        return latencies

    def time_awaited_emits(self):
        self._run()

    def track_events_per_second(self):
        latencies = self._run()
        return len(latencies) / sum(latencies)

    track_events_per_second.unit = "events/s"

    def track_p50_latency_us(self):
        return float(np.percentile(self._run(), 50) * 1e6)

    track_p50_latency_us.unit = "us"

    def track_p99_latency_us(self):
        return float(np.percentile(self._run(), 99) * 1e6)

    track_p99_latency_us.unit = "us"


class LiveFireAndForget:
    timeout = 300

    def setup(self):
        self.events = _live_events()
        _load_kernels()

    def time_emits(self):
        controller = build_flow([SyncEmitSource(), _aggregate()]).run()
        emit = controller.emit
        for body, key, when in self.events:
            emit(body, key, when)
        controller.terminate()
        controller.await_termination()

    def track_events_per_second(self):
        start = time.perf_counter()
        self.time_emits()
        return LIVE / (time.perf_counter() - start)

    track_events_per_second.unit = "events/s"


class FirstAwaitedFeature:
    """A live service's first event: the flow built, one event emitted and its features awaited,
    the flow terminated; in a process that has run it before (`time_`) and in a fresh one
    (`timeraw_`: the imports and loading the kernels are the difference)."""

    timeout = 600

    def setup(self):
        self.code = compile(FIRST_FEATURE_SCRIPT, "first_feature", "exec")
        exec(self.code, {})  # kernels loaded (compiled into Numba's disk cache the first time)
        while loading("sliding", wait=1.0):
            pass

    def time_first_awaited_feature(self):
        exec(self.code, {})

    def timeraw_first_awaited_feature(self):
        return FIRST_FEATURE_SCRIPT, GC_ON

    timeraw_first_awaited_feature.warmup_time = 0
