"""The backfill against polars, measured in one run (issue 4's target: at least twice polars'
rows/s). Not an asv benchmark: polars is not a dependency of storey.

    python asv_bench/compare_polars.py [--polars-python PATH] [--rounds 7]

PATH is the python of an environment with polars and pyarrow (default /tmp/polars-venv/bin/python;
make one with `python3 -m venv /tmp/polars-venv && /tmp/polars-venv/bin/pip install polars
pyarrow`). The events are those of asv_bench/benchmarks/bench_aggregation.py (1M events over 10k
keys in one day), written to a Parquet file. Each round runs, one after the other, our
ParquetSource -> AggregateByKey -> ParquetTarget and DataframeSource -> AggregateByKey ->
ParquetTarget (sum, count, avg, min and max of one field over sliding 1h/6h/24h windows with a
10m period) and polars' per-key rolling sum, count, mean, min and max over the same windows
(scan_parquet -> sink_parquet) written two ways: as a per-key `rolling` (a rolling group by per
window, joined back to the events: the issue's formulation) and as `rolling_*_by(...).over(key)`
expressions (the fastest we know). Each runs in a warm process of its own, so that all see the
same machine load. The best and median round are reported.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.bench_aggregation import N, _aggregate, _frame  # noqa: E402

from storey import DataframeSource, ParquetSource, ParquetTarget, build_flow

POLARS_WORKER = textwrap.dedent(
    """
    import sys, time
    import polars as pl

    source, target, formulation = sys.argv[1], sys.argv[2], sys.argv[3]
    WINDOWS = ("1h", "6h", "24h")


    def by_expressions():
        # per-key rolling sums, counts, means, minima and maxima as window expressions
        columns = []
        for window in WINDOWS:
            amount = pl.col("amount")
            columns += [
                amount.rolling_sum_by("time", window_size=window).over("user").alias(f"amount_sum_{window}"),
                amount.is_not_null().cast(pl.Float64).rolling_sum_by("time", window_size=window)
                .over("user").alias(f"amount_count_{window}"),
                amount.rolling_mean_by("time", window_size=window).over("user").alias(f"amount_avg_{window}"),
                amount.rolling_min_by("time", window_size=window).over("user").alias(f"amount_min_{window}"),
                amount.rolling_max_by("time", window_size=window).over("user").alias(f"amount_max_{window}"),
            ]
        pl.scan_parquet(source).with_columns(columns).sink_parquet(target)


    def by_rolling():
        # the per-key `rolling` (a rolling group by) of each window, joined back to the events
        events = pl.scan_parquet(source).with_row_index("row")
        ordered = events.sort("user", "time", maintain_order=True)
        out = events
        for window in WINDOWS:
            amount = pl.col("amount")
            features = ordered.rolling(index_column="time", period=window, group_by="user").agg(
                pl.col("row").last(),
                amount.sum().alias(f"amount_sum_{window}"),
                amount.count().cast(pl.Float64).alias(f"amount_count_{window}"),
                amount.mean().alias(f"amount_avg_{window}"),
                amount.min().alias(f"amount_min_{window}"),
                amount.max().alias(f"amount_max_{window}"),
            )
            out = out.join(features.drop("user", "time"), on="row", how="left")
        out.sort("row").drop("row").sink_parquet(target)


    run = by_expressions if formulation == "expressions" else by_rolling
    for line in sys.stdin:
        start = time.perf_counter()
        run()
        print(time.perf_counter() - start, flush=True)
    """
)

POLARS_RUNS = {
    "polars rolling_*_by().over() expressions": "expressions",
    "polars per-key rolling (issue's formulation)": "rolling",
}


def _ours(flow_source, target):
    start = time.perf_counter()
    build_flow([flow_source, _aggregate(), ParquetTarget(target)]).run().await_termination()
    return time.perf_counter() - start


def _summary(name, times):
    times = sorted(times)
    best, median = times[0], times[len(times) // 2]
    print(f"{name:46s} best {best:6.3f} s ({N / best / 1e3:6.0f}k rows/s)   median {median:6.3f} s")
    return best, median


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polars-python", default="/tmp/polars-venv/bin/python")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        events = os.path.join(folder, "events.parquet")
        _frame().to_parquet(events)
        frame = pd.read_parquet(events)
        workers = {
            name: subprocess.Popen(
                [args.polars_python, "-c", POLARS_WORKER, events, os.path.join(folder, kind), kind],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for name, kind in POLARS_RUNS.items()
        }

        def polars(worker):
            worker.stdin.write("run\n")
            worker.stdin.flush()
            return float(worker.stdout.readline())

        ours_parquet = os.path.join(folder, "ours.parquet")
        runs = {
            "storey ParquetSource -> ParquetTarget": lambda: _ours(
                ParquetSource(events, key_field="user", time_field="time"), ours_parquet
            ),
            "storey DataframeSource -> ParquetTarget": lambda: _ours(
                DataframeSource(frame, key_field="user", time_field="time"), ours_parquet
            ),
        }
        for name, worker in workers.items():
            runs[name] = lambda worker=worker: polars(worker)
        for run in runs.values():  # warm-up: kernels loaded, caches and pages in
            run()
        times = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                times[name].append(run())
        for worker in workers.values():
            worker.stdin.close()
            worker.wait()
    print(f"{N:,} events over 10k keys, {args.rounds} rounds, {os.cpu_count()} cores")
    results = {name: _summary(name, t) for name, t in times.items()}
    for polars_name in POLARS_RUNS:
        polars_best, polars_median = results[polars_name]
        print(f"against {polars_name}:")
        for name, (best, median) in results.items():
            if name.startswith("storey"):
                ratio_best, ratio_median = polars_best / best, polars_median / median
                print(f"  {name:40s} {ratio_best:4.2f}x polars (best), {ratio_median:4.2f}x (median)")


if __name__ == "__main__":
    main()
