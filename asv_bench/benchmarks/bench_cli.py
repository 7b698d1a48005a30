"""The main job as `storey backfill` and `storey demo` run it, on the sample card payments, each
at two sizes (divide the size by the time for rows/s):

- backfill: ParquetSource -> CountRows -> AggregateByKey -> ParquetTarget (the CLI's flow), in a
  process that has run it before (`time_backfill`) and as the command runs it, in a fresh
  interpreter (`timeraw_backfill`: `storey backfill ... --quiet`, imports and kernel loading
  included, interpreter start-up not);
- passthrough: ParquetSource -> ParquetTarget, the same file with no features (the I/O floor);
- live: awaited emits through SyncEmitSource -> AggregateByKey -> Complete on a table that
  holds the backfilled history (the demo's live path), one event at a time;
- the sample generator itself.
"""

import os
import shutil
import tempfile

from .bench_aggregation import GC_ON

FEATURES = "amount:count,sum,avg,max@1h,24h/10m"
SIZES = [100_000, 1_000_000]
HISTORY = 100_000


def _sample_files():
    """The sample events at each size, written once per asv run: {size: path}."""
    from storey.cli.sample_data import generate_events, write_events

    # asv runs setup_cache in a directory of its own, removed after the run
    folder = os.path.abspath("bench-cli")
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for n in SIZES:
        paths[n] = os.path.join(folder, f"{n}.parquet")
        write_events(generate_events(n, max(n // 200, 10), days=30, seed=0), paths[n])
    return paths


def _plan(path, out):
    from storey.cli.backfill import BackfillPlan
    from storey.cli.feature_spec import parse_specs
    from storey.cli.inputs import resolve_input

    return BackfillPlan(resolve_input(path), ["user_id"], "timestamp", parse_specs(FEATURES), out)


class Backfill:
    params = SIZES
    param_names = ["events"]
    timeout = 300

    def setup_cache(self):
        return _sample_files()

    def setup(self, paths, events):
        from storey.cli.backfill import run_backfill

        self.out = tempfile.mkdtemp(prefix="bench-cli-out-")
        self.plan = _plan(paths[events], os.path.join(self.out, "features.parquet"))
        run_backfill(self.plan, show_progress=False)  # compiles the kernels outside the timing

    def teardown(self, paths, events):
        shutil.rmtree(self.out, ignore_errors=True)

    def time_backfill(self, paths, events):
        from storey.cli.backfill import run_backfill

        run_backfill(self.plan, show_progress=False)

    def timeraw_backfill(self, paths, events):
        argv = ["backfill", paths[events], "--key", "user_id", "--time", "timestamp"]
        argv += ["--features", FEATURES, "--out", os.path.join(self.out, "cold.parquet")]
        argv += ["--overwrite", "--quiet"]
        return f"from storey.cli import main\nassert main({argv!r}) == 0", GC_ON

    timeraw_backfill.warmup_time = 0  # a warm-up run would not be cold


class Passthrough:
    params = SIZES
    param_names = ["events"]
    timeout = 300

    def setup_cache(self):
        return _sample_files()

    def setup(self, paths, events):
        self.out = tempfile.mkdtemp(prefix="bench-cli-out-")

    def teardown(self, paths, events):
        shutil.rmtree(self.out, ignore_errors=True)

    def time_parquet_to_parquet(self, paths, events):
        from storey import ParquetSource, ParquetTarget, build_flow

        source = ParquetSource(paths[events], key_field="user_id", time_field="timestamp")
        target = ParquetTarget(os.path.join(self.out, "copy.parquet"))
        build_flow([source, target]).run().await_termination()


class Live:
    """Awaited emits of new events, one at a time, on top of a backfilled history."""

    params = [1_000, 10_000]
    param_names = ["events"]
    timeout = 300
    # each sample needs a fresh table: emitting the same events twice would make them late
    number = 1
    repeat = 5
    warmup_time = 0

    def setup_cache(self):
        from storey.cli.sample_data import generate_events, write_events

        folder = os.path.abspath("bench-cli-live")
        os.makedirs(folder, exist_ok=True)
        n = HISTORY + max(self.params)
        events = generate_events(n, 500, days=30, seed=1)
        history = os.path.join(folder, "history.parquet")
        write_events(events.slice(0, HISTORY), history)
        return history, events.slice(HISTORY).to_pylist()

    def setup(self, cache, events):
        from storey.cli.backfill import aggregate_step, new_table, source_step
        from storey.flow import build_flow

        history, rows = cache
        plan = _plan(history, "unused.parquet")
        self.specs = plan.specs
        self.table = new_table()
        build_flow([source_step(plan), aggregate_step(plan, self.table)]).run().await_termination()
        self.rows = rows[:events]

    def time_awaited_emit(self, cache, events):
        from storey.cli.demo import _live_emit

        _live_emit(self.specs, self.table, self.rows, show=False)


class SampleData:
    params = SIZES
    param_names = ["events"]

    def time_generate(self, events):
        from storey.cli.sample_data import generate_events

        generate_events(events, max(events // 200, 10), days=30, seed=0)
