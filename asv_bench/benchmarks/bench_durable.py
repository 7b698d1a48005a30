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

from storey import SQLDriver, Table

from . import _state_tables as shared
from ._state_tables import _AwaitedFirstTouches
from .bench_aggregation import _load_kernels

LOAD_KEYS = 100_000


def _sqlite(folder, name="state.db"):
    return SQLDriver("user", f"sqlite:///{os.path.join(folder, name)}")


def _backfilled_database(folder, **events):
    """The folder (made if need be) of state.db, holding the state of a backfill."""
    folder = os.path.abspath(folder)
    os.makedirs(folder, exist_ok=True)
    shared.aggregate_into(Table("features", _sqlite(folder)), **events)
    return folder


class Backfill:
    timeout = 900

    def setup_cache(self):
        return shared.write_events("bench-durable")

    def setup(self, path):
        self.folder = tempfile.mkdtemp()
        _load_kernels()

    def teardown(self, path):
        shutil.rmtree(self.folder, ignore_errors=True)

    def time_into_memory(self, path):
        shared.backfill_into_memory(path, self.folder)

    def time_into_sqlite(self, path):
        # a new file each run: the whole state is written, as by a first shared.backfill
        name = f"state-{time.monotonic_ns()}.db"
        shared.backfill(
            path, os.path.join(self.folder, "sqlite.parquet"), Table("features", _sqlite(self.folder, name))
        )


class LoadState:
    timeout = 900

    def setup_cache(self):
        return _backfilled_database("bench-durable-load", n=10 * LOAD_KEYS, keys=LOAD_KEYS)

    def setup(self, folder):
        _load_kernels()
        self.queries = shared.key_queries(LOAD_KEYS)

    def time_load_100k_keys(self, folder):
        shared.query_all(Table("features", _sqlite(folder)), self.queries)


class LiveUnloadedKeys(_AwaitedFirstTouches):
    """Each run opens the table in a new Table object: the keys are not loaded yet."""

    timeout = 900
    number = 1
    repeat = 5

    def setup_cache(self):
        return _backfilled_database("bench-durable-live")

    def setup(self, folder):
        _load_kernels()
        self.events = shared.unloaded_key_events()
        # the copy each run changes, so that every run starts from the backfilled state
        self.work = tempfile.mkdtemp()

    def teardown(self, folder):
        shutil.rmtree(self.work, ignore_errors=True)

    def _latencies(self, folder):
        copy = f"state-{time.monotonic_ns()}.db"
        shutil.copy(os.path.join(folder, "state.db"), os.path.join(self.work, copy))
        return shared.awaited_latencies(Table("features", _sqlite(self.work, copy)), self.events)
