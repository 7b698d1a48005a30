"""Memory of `storey backfill` as the history grows: the backfill of `bench_aggregation` (Parquet
-> AggregateByKey, sliding 1h/6h/24h in 10m buckets; sum, count, avg, min, max -> Parquet) over
the same 10k keys in one day, at 1M and at 10M events, each run as a user runs the command, in a
fresh process.

The source reads ahead a bounded number of batches, the table holds one row per key and the
writer a bounded number of parts, so the peak resident set size should not follow the number of
events: issue 17 asks that it be at 10M within 1.5 times what it is at 1M
(`track_peak_rss_growth`).

The peak is the process's own high-water mark (`VmHWM` of /proc/self/status, read as it ends):
the resident set size that `wait4` reports for a child includes its parent's, which a vfork'ed
child shares until it executes the command. Linux only.
"""

import os
import shutil
import subprocess
import sys
import tempfile

from .bench_aggregation import _frame, backfill_args

SIZES = [1_000_000, 10_000_000]

# `storey backfill` (the arguments after the script's) run by `main`, as `python -m storey` runs
# it; prints the process's peak resident set size in kB
_PEAK_OF_COMMAND = """
import sys
from storey.cli import main

status = main(sys.argv[1:])
with open("/proc/self/status") as lines:
    print(next(line.split()[1] for line in lines if line.startswith("VmHWM:")))
sys.exit(status)
"""


def peak_rss_mib(args):
    """The peak resident set size, in MiB, of a fresh process that runs `storey ARGS`."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_COMMAND, *args], check=True, capture_output=True, text=True
    )
    return int(done.stdout.split()[-1]) / 1024


class BackfillPeakMemory:
    timeout = 900
    # each sample is a fresh process of its own
    number = 1
    repeat = 1

    def setup_cache(self):
        folder = os.path.abspath("bench-memory")
        os.makedirs(folder, exist_ok=True)
        paths = {}
        for n in SIZES:
            paths[n] = os.path.join(folder, f"{n}.parquet")
            _frame(n).to_parquet(paths[n])
        # the kernels compiled into Numba's disk cache, as on any machine after its first run
        with tempfile.TemporaryDirectory() as out:
            peak_rss_mib(backfill_args(paths[SIZES[0]], os.path.join(out, "features.parquet")))
        return paths

    def setup(self, paths):
        self.out = tempfile.mkdtemp(prefix="bench-memory-out-")

    def teardown(self, paths):
        shutil.rmtree(self.out, ignore_errors=True)

    def _peak(self, paths, n):
        return peak_rss_mib(backfill_args(paths[n], os.path.join(self.out, "features.parquet")))

    def track_peak_rss_1m(self, paths):
        return self._peak(paths, SIZES[0])

    def track_peak_rss_10m(self, paths):
        return self._peak(paths, SIZES[1])

    def track_peak_rss_growth(self, paths):
        """Peak RSS at 10M events over the peak at 1M (issue 17: at most 1.5)."""
        return self._peak(paths, SIZES[1]) / self._peak(paths, SIZES[0])

    track_peak_rss_1m.unit = "MiB"
    track_peak_rss_10m.unit = "MiB"
    track_peak_rss_growth.unit = "ratio"
