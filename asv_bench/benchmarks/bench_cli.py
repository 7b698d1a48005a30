"""`storey backfill` as a user runs it (the CLI's flow: ParquetSource -> CountRows ->
AggregateByKey -> ParquetTarget) on the sample card payments, at two sizes; and the sample
generator itself. Rows per second: divide the size by the time.
"""

import os
import shutil
import tempfile

FEATURES = "amount:count,sum,avg,max@1h,24h/10m"


class Backfill:
    params = [100_000, 1_000_000]
    param_names = ["events"]
    timeout = 300

    def setup_cache(self):
        from storey.cli.sample_data import generate_events, write_events

        # asv runs this in a directory of its own, removed after the run
        folder = os.path.abspath("bench-cli")
        os.makedirs(folder, exist_ok=True)
        for n in self.params:
            write_events(
                generate_events(n, max(n // 200, 10), days=30, seed=0), os.path.join(folder, f"{n}.parquet")
            )
        return folder

    def setup(self, folder, events):
        from storey.cli.backfill import BackfillPlan
        from storey.cli.inputs import resolve_input
        from storey.cli.spec import parse_specs

        self.out = tempfile.mkdtemp(prefix="bench-cli-out-")
        source = resolve_input(os.path.join(folder, f"{events}.parquet"))
        self.plan = BackfillPlan(
            source, ["user_id"], "timestamp", parse_specs(FEATURES), os.path.join(self.out, "f.parquet")
        )
        # compile the kernels outside the timing
        from storey.cli.backfill import run_backfill

        run_backfill(self.plan, show_progress=False)

    def teardown(self, folder, events):
        shutil.rmtree(self.out, ignore_errors=True)

    def time_backfill(self, folder, events):
        from storey.cli.backfill import run_backfill

        run_backfill(self.plan, show_progress=False)


class SampleData:
    params = [100_000, 1_000_000]
    param_names = ["events"]

    def time_generate(self, events):
        from storey.cli.sample_data import generate_events

        generate_events(events, max(events // 200, 10), days=30, seed=0)
