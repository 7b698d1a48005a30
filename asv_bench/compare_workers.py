"""The backfill in one process against the backfill split by key on N local Dask workers, in fresh
processes, alternating, medians (the README's "Scaling out" figures):

    python asv_bench/compare_workers.py [--rounds 5] [--workers 2] [--events 10000000] [--files 10]

Each round runs, each in a fresh Python process: the single-process backfill (what `storey
backfill` runs), the distributed backfill on a new LocalCluster of N worker processes (what
`storey backfill --workers N` runs), the shuffle phase alone on such a cluster, and a
single-process passthrough (the files read and written to one Parquet file, no features: what
reading and writing cost without a shuffle). For each it
prints the wall time (cluster start included), the rows/s, the CPU seconds of the process and
all its children (workers included), the cores used (CPU / wall) and the rows per CPU second
(rows/s per core). The events are the sample card payments (`storey sample`) in FILES Parquet
files, written once under a temporary folder.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

from benchmarks.bench_distributed import FEATURES, _distributed_backfill, _plan, _shuffle_job, write_sample  # noqa: E402


def run_single(source, out):
    from storey.cli.backfill import run_backfill

    return {
        "seconds": run_backfill(_plan(source, os.path.join(out, "f.parquet")), show_progress=False).seconds
    }


def run_workers(source, out, workers):
    result = _distributed_backfill(source, out, workers, overwrite=True)
    return {
        "seconds": result.seconds,
        "shuffle": result.shuffle_seconds,
        "backfill": result.backfill_seconds,
        "partitions": result.partitions,
    }


def run_passthrough(source, out):
    from storey import ParquetSource, ParquetTarget, build_flow
    from storey.cli.inputs import resolve_input

    start = time.perf_counter()
    source_step = ParquetSource(resolve_input(source).paths, key_field="user_id", time_field="timestamp")
    build_flow([source_step, ParquetTarget(os.path.join(out, "copy.parquet"))]).run().await_termination()
    return {"seconds": time.perf_counter() - start}


def run_shuffle(source, out, workers):
    from storey.distributed.dask_client import dask_client
    from storey.distributed.shuffle_task import shuffle_unit

    job = _shuffle_job(source, out, 2 * workers, "compare")
    with dask_client(workers) as client:
        start = time.perf_counter()
        client.gather([client.submit(shuffle_unit, job, u, pure=False) for u in range(len(job.units))])
        return {"shuffle": time.perf_counter() - start}


def _child(args):
    out = tempfile.mkdtemp(prefix="compare-workers-out-")
    if args.run == "single":
        found = run_single(args.source, out)
    elif args.run == "workers":
        found = run_workers(args.source, out, args.workers)
    elif args.run == "passthrough":
        found = run_passthrough(args.source, out)
    else:
        found = run_shuffle(args.source, out, args.workers)
    subprocess.run(["rm", "-rf", out], check=True)
    print(json.dumps(found))


def _measure(kind, args):
    command = [
        sys.executable,
        __file__,
        "--run",
        kind,
        "--source",
        args.source,
        "--workers",
        str(args.workers),
    ]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{kind} failed (status {status})")
    found = json.loads(process.stdout.read().strip().splitlines()[-1])
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, **found}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument(
        "--run", choices=["single", "workers", "shuffle", "passthrough"], help=argparse.SUPPRESS
    )
    parser.add_argument("--source", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        return _child(args)
    folder = tempfile.mkdtemp(prefix="compare-workers-")
    args.source = write_sample(folder, args.events, args.files)
    print(f"{args.events:,} events in {args.files} files; features {FEATURES}; {os.cpu_count()} cores")
    runs = {"single": [], "workers": [], "shuffle": [], "passthrough": []}
    for round_ in range(args.rounds):
        for kind, found in runs.items():
            found.append(_measure(kind, args))
            print(f"round {round_ + 1} {kind}: {json.dumps(found[-1])}", flush=True)
    for kind, found in runs.items():
        wall = statistics.median(r["wall"] for r in found)
        cpu = statistics.median(r["cpu"] for r in found)
        line = (
            f"{kind}: wall {wall:.2f} s ({args.events / wall:,.0f} rows/s), CPU {cpu:.2f} s "
            f"({cpu / wall:.2f} cores used, {args.events / cpu:,.0f} rows per CPU second)"
        )
        for phase in ("seconds", "shuffle", "backfill"):
            if phase in found[0]:
                line += f"; {phase} {statistics.median(r[phase] for r in found):.2f} s"
        print(line)
    subprocess.run(["rm", "-rf", folder], check=True)


if __name__ == "__main__":
    main()
