"""The backfill split by key on Dask (storey.distributed) against the single-process backfill, on
10 million sample card payments in 10 Parquet files (a month of events, 50,000 users):

- single: the single-process backfill (`storey backfill`'s flow) of the 10 files;
- workers: the same on a LocalCluster of 2 worker processes (started outside the timing),
  shuffle and backfill phases included;
- shuffle: the shuffle phase alone on those workers (each file read and split into the
  partitions' pieces), against passthrough, the single process copying the files to one
  Parquet file (reading and writing them, no features).

Divide 10 million by the time for rows/s. `asv_bench/compare_workers.py` runs the first two in
fresh processes, alternating, and prints rows/s and CPU seconds (per core used).
"""

import os
import shutil
import tempfile

FEATURES = "amount:count,sum,avg,max@1h,24h/10m"
EVENTS = 10_000_000
FILES = 10
WORKERS = 2


def write_sample(folder, events=EVENTS, files=FILES):
    """The sample events in `files` Parquet files under `folder`; returns their glob."""
    from storey.cli.sample_data import generate_events, write_events

    os.makedirs(folder, exist_ok=True)
    table = generate_events(events, events // 200, days=30, seed=0)
    size = events // files
    for i in range(files):
        write_events(table.slice(i * size, size), os.path.join(folder, f"events-{i:02d}.parquet"))
    return os.path.join(folder, "*.parquet")


def _plan(source, out):
    from storey.cli.backfill import BackfillPlan
    from storey.cli.feature_spec import parse_specs
    from storey.cli.inputs import resolve_input

    return BackfillPlan(resolve_input(source), ["user_id"], "timestamp", parse_specs(FEATURES), out)


def _distributed_backfill(source, out, client, **options):
    """storey.distributed.backfill of the events in `source` into `out`, with FEATURES, on `client`."""
    from storey.distributed import backfill

    aggregates = [spec.to_aggregator() for spec in _plan(source, out).specs]
    return backfill(
        source, key="user_id", time="timestamp", aggregates=aggregates, out=out, client=client, **options
    )


def _shuffle_job(source, out, partitions, run):
    """The job of the distributed backfill's shuffle phase alone (no features) of `source` into
    `out`: a task for each of its read units (`job.units`)."""
    from functools import partial

    from storey.distributed.job import BackfillJob
    from storey.distributed.partition_task import aggregate_steps
    from storey.distributed.read_units import read_units

    plan = _plan(source, out)
    return BackfillJob(
        format="parquet",
        units=tuple(read_units(plan.input)),
        source_kwargs=plan.source_kwargs(),
        key=("user_id",),
        partitions=partitions,
        out=plan.out,
        run=run,
        steps=partial(aggregate_steps, []),
    )


class _TenMillion:
    timeout = 900
    number = 1
    repeat = (1, 3, 600)
    warmup_time = 0

    def setup_cache(self):
        # asv runs setup_cache in a directory of its own, removed after the run
        return write_sample(os.path.abspath("bench-distributed"))

    def setup(self, source):
        self.out = tempfile.mkdtemp(prefix="bench-distributed-out-")

    def teardown(self, source):
        shutil.rmtree(self.out, ignore_errors=True)


class Single(_TenMillion):
    def setup(self, source):
        from storey.cli.backfill import run_backfill

        super().setup(source)
        self.plan = _plan(source, os.path.join(self.out, "features.parquet"))
        small = _plan(source.replace("*", "events-00"), os.path.join(self.out, "warm.parquet"))
        run_backfill(small, show_progress=False)  # the kernels loaded outside the timing

    def time_backfill(self, source):
        from storey.cli.backfill import run_backfill

        run_backfill(self.plan, show_progress=False)

    def time_passthrough(self, source):
        from storey import ParquetSource, ParquetTarget, build_flow
        from storey.cli.inputs import resolve_input

        paths = resolve_input(source).paths
        flow = build_flow(
            [
                ParquetSource(paths, key_field="user_id", time_field="timestamp"),
                ParquetTarget(os.path.join(self.out, "copy.parquet")),
            ]
        )
        flow.run().await_termination()


class Workers(_TenMillion):
    def setup(self, source):
        import logging

        from distributed import Client, LocalCluster

        super().setup(source)
        self.cluster = LocalCluster(
            n_workers=WORKERS, threads_per_worker=1, dashboard_address=":0", silence_logs=logging.ERROR
        )
        self.client = Client(self.cluster)
        # each worker loads storey and the kernels outside the timing
        self._backfill(source.replace("*", "events-00"), os.path.join(self.out, "warm"))

    def teardown(self, source):
        self.client.close()
        self.cluster.close()
        super().teardown(source)

    def _backfill(self, source, out):
        return _distributed_backfill(source, out, self.client)

    def time_backfill(self, source):
        self._backfill(source, os.path.join(self.out, "features"))

    def time_shuffle(self, source):
        from storey.distributed.shuffle_task import shuffle_unit

        job = _shuffle_job(source, os.path.join(self.out, "shuffle"), 2 * WORKERS, "bench")
        futures = [self.client.submit(shuffle_unit, job, u, pure=False) for u in range(len(job.units))]
        self.client.gather(futures)
        shutil.rmtree(job.out, ignore_errors=True)
