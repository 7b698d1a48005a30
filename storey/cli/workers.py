"""`storey backfill ... --workers N` or `--scheduler ADDRESS`: the same backfill, split by key
across the worker processes of a Dask cluster (`storey.distributed`, the storey[dask] extra).

OUT is then a directory holding one Parquet file per key partition, which together hold exactly
the rows the single-process backfill writes.
"""

import importlib.util
from functools import partial


def on_workers(args):
    """Whether the command runs on a Dask cluster."""
    return args.workers is not None or args.scheduler is not None


def worker_options_problem(args, plan):
    """What keeps this command from running on workers (one line), or None."""
    if not on_workers(args):
        if args.partitions is not None:
            return "--partitions applies to a backfill on --workers or a --scheduler"
        return None
    option = "--workers" if args.workers is not None else "--scheduler"
    if importlib.util.find_spec("distributed") is None:
        return f"{option} needs Dask: pip install 'storey[dask]'"
    if plan.partition_by:
        return f"--partition-by does not combine with {option} (OUT holds a file per key partition)"
    if args.rows_per_file is not None:
        return f"--rows-per-file does not combine with {option} (OUT holds a file per key partition)"
    if plan.single_file:
        return f"{option} writes a directory (a Parquet file per key partition): OUT must not end in .parquet"
    return None


def run_on_workers(plan, args, show_progress):
    """Runs the backfill `plan` on the Dask cluster the arguments name; returns its result."""
    from storey.distributed.partition_task import aggregate_steps
    from storey.distributed.scale_out import TableHoldsState, run_distributed_backfill

    from . import CliError

    aggregates = [spec.to_aggregator() for spec in plan.specs]
    try:
        return run_distributed_backfill(
            plan.input,
            plan.key,
            plan.time,
            partial(aggregate_steps, aggregates),
            plan.out,
            client=args.scheduler or args.workers,
            table=plan.table,
            partitions=args.partitions,
            time_format=plan.time_format,
            progress=show_progress,
        )
    except TableHoldsState as ex:
        raise CliError(f"--table: {ex}") from ex
