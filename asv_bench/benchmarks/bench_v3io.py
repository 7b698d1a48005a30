"""Window state in V3IO (V3ioDriver, through the v3io client, against the V3IO emulator in a process
of its own), beside the in-memory table (NoopDriver):

- backfill: Parquet -> AggregateByKey (sum, count, avg, min, max over sliding 1h/6h/24h in 10m
  buckets) -> Parquet, 1M events over 10k keys, into a new V3IO table (every key's final state
  written when the flow ends: one request per key, the requests of a flush concurrent) and into
  memory; the ratio is the cost of keeping the state in V3IO.

Run with `cd asv_bench && asv run --python=same -b bench_v3io`.
"""

import itertools
import os
import shutil
import tempfile

from storey import Table, V3ioDriver
from storey.testing.v3io import EmulatorProcess

from . import _state_tables as shared
from .bench_aggregation import _load_kernels

_tables = itertools.count()


class BackfillV3io:
    timeout = 900

    def setup_cache(self):
        return shared.write_events("bench-v3io")

    def setup(self, path):
        self.folder = tempfile.mkdtemp()
        self.emulator = EmulatorProcess().start()
        _load_kernels()

    def teardown(self, path):
        self.emulator.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def time_into_memory(self, path):
        shared.backfill_into_memory(path, self.folder)

    def time_into_v3io(self, path):
        # a new table each run: the whole state is written, as by a first backfill
        table = Table(f"bigdata/features_{next(_tables)}", V3ioDriver(self.emulator.url, "key"))
        shared.backfill(path, os.path.join(self.folder, "v3io.parquet"), table)
