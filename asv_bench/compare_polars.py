"""The backfill against polars, cold and warm, measured in one run (issue 4's target: at least
twice polars' rows/s). Not an asv benchmark: polars is not a dependency of storey.

    python asv_bench/compare_polars.py [--polars-python PATH] [--rounds 7] [--events 1000000]

PATH is the python of an environment with polars and pyarrow (default /tmp/polars-venv/bin/python;
make one with `python3 -m venv /tmp/polars-venv && /tmp/polars-venv/bin/pip install polars
pyarrow`). The events are those of asv_bench/benchmarks/bench_aggregation.py (1M events over 10k
keys in one day; --events sets how many, over the same keys and day), written to a Parquet
file. The features: sum, count, avg, min and max of one
field over sliding 1h/6h/24h windows with a 10m period, for every event, written to Parquet.
Ours: `storey backfill` (the command), the same flow as a script (ParquetSource ->
AggregateByKey -> ParquetTarget), and, warm only, DataframeSource -> AggregateByKey ->
ParquetTarget. Polars' (scan_parquet -> sink_parquet), written two ways: as a per-key `rolling`
(a rolling group by per window, joined back to the events: the issue's formulation) and as
`rolling_*_by(...).over(key)` expressions (the fastest we know).

- cold: every run a fresh process, as users run a backfill, timed here from its start to its
  exit: interpreter start-up, imports, loading the kernels (from Numba's disk cache, filled by a
  first run), reading, computing and writing;
- warm: each contestant in a process of its own that has run it before (ours in this one,
  polars' in a worker of its own), timed inside that process.

Each round runs every contestant once, one after the other (A B C D ..., A B C D ...), so that
all see the same machine load. The best and median round are reported, and the ratios of
polars' time to ours (above 1: ours is faster), and, for the cold runs, the largest maximum
resident set size of each contestant's processes (what `/usr/bin/time -v` reports).
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

from benchmarks.bench_aggregation import (  # noqa: E402
    N,
    _aggregate,
    _frame,
    backfill_command,
    backfill_script,
)

import storey
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
    "polars per-key rolling (issue's formulation)": "rolling",
    "polars rolling_*_by().over() expressions": "expressions",
}
COMMAND = "storey backfill (the command)"
SCRIPT = "storey ParquetSource -> ParquetTarget"
DATAFRAME = "storey DataframeSource -> ParquetTarget"


def _storey_environment():
    """This environment, with the storey this script imports first on the path of its children."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(storey.__file__)))
    path = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def _process(argv, env=None, stdin=None):
    """Seconds from the start of a new process running argv to its exit, and its maximum resident
    set size in bytes. GNU time starts it: a child forked from this process, which holds the
    events and the warm runs, would count this process's size as its own."""
    with tempfile.NamedTemporaryFile("r") as usage:
        start = time.perf_counter()
        subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", usage.name, *argv],
            input=stdin,
            text=True,
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        seconds = time.perf_counter() - start
        return seconds, int(usage.read()) * 1024


def _ours(flow_source, target):
    start = time.perf_counter()
    build_flow([flow_source, _aggregate(), ParquetTarget(target)]).run().await_termination()
    return time.perf_counter() - start


def _cold_runs(events, folder, polars_python):
    env = _storey_environment()
    out = os.path.join(folder, "cold.parquet")
    command = backfill_command(events, out)
    runs = {
        COMMAND: lambda: _process(command, env),
        SCRIPT: lambda: _process([sys.executable, "-c", backfill_script(events, out)], env),
    }
    for name, kind in POLARS_RUNS.items():
        argv = [polars_python, "-c", POLARS_WORKER, events, os.path.join(folder, f"cold-{kind}"), kind]
        runs[name] = lambda argv=argv: _process(argv, stdin="run\n")
    return runs


def _warm_runs(events, folder, workers):
    frame = pd.read_parquet(events)
    out = os.path.join(folder, "warm.parquet")

    def polars(worker):
        worker.stdin.write("run\n")
        worker.stdin.flush()
        return float(worker.stdout.readline())

    runs = {
        SCRIPT: lambda: _ours(ParquetSource(events, key_field="user", time_field="time"), out),
        DATAFRAME: lambda: _ours(DataframeSource(frame, key_field="user", time_field="time"), out),
    }
    for name, worker in workers.items():
        runs[name] = lambda worker=worker: polars(worker)
    return runs


def _summary(name, times, events):
    times = sorted(times)
    best, median = times[0], times[len(times) // 2]
    print(f"  {name:46s} best {best:6.3f} s ({events / best / 1e3:5.0f}k rows/s)   median {median:6.3f} s")
    return best, median


def _ratios(title, results):
    print(f"{title}: polars' time / ours (above 1: ours is faster), best (median)")
    for polars_name in POLARS_RUNS:
        polars_best, polars_median = results[polars_name]
        print(f"  against {polars_name}:")
        for name, (best, median) in results.items():
            if name.startswith("storey"):
                print(f"    {name:42s} {polars_best / best:5.2f}x ({polars_median / median:5.2f}x)")


def _load():
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polars-python", default="/tmp/polars-venv/bin/python")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--events", type=int, default=N, help="events in the history (10k keys, one day)")
    args = parser.parse_args()
    load_before = _load()
    with tempfile.TemporaryDirectory() as folder:
        events = os.path.join(folder, "events.parquet")
        _frame(args.events).to_parquet(events)
        workers = {
            name: subprocess.Popen(
                [args.polars_python, "-c", POLARS_WORKER, events, os.path.join(folder, kind), kind],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for name, kind in POLARS_RUNS.items()
        }
        try:
            cold = _cold_runs(events, folder, args.polars_python)
            warm = _warm_runs(events, folder, workers)
            for run in [*cold.values(), *warm.values()]:  # kernels compiled and cached, pages in
                run()
            cold_times = {name: [] for name in cold}
            cold_memory = {name: 0 for name in cold}
            warm_times = {name: [] for name in warm}
            for _ in range(args.rounds):
                for name, run in cold.items():
                    seconds, memory = run()
                    cold_times[name].append(seconds)
                    cold_memory[name] = max(cold_memory[name], memory)
                for name, run in warm.items():
                    warm_times[name].append(run())
        finally:
            for worker in workers.values():
                worker.stdin.close()
                worker.wait()
    print(f"{args.events:,} events over 10k keys, {args.rounds} rounds, {os.cpu_count()} cores")
    print(f"load average (1, 5, 15 min) {load_before} before, {_load()} after")
    print("cold: a fresh process per run, timed from its start to its exit")
    cold_results = {name: _summary(name, t, args.events) for name, t in cold_times.items()}
    print("warm: in a process that has run it before, timed inside it")
    warm_results = {name: _summary(name, t, args.events) for name, t in warm_times.items()}
    print("cold: the largest maximum resident set size of each contestant's processes")
    for name, memory in cold_memory.items():
        print(f"  {name:46s} {memory / 2**20:6.0f} MiB")
    _ratios("cold", cold_results)
    _ratios("warm", warm_results)


if __name__ == "__main__":
    main()
