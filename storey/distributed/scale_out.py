"""`backfill`: a backfill split by key across the workers of a Dask cluster.

The run has two phases of Dask tasks, each waited for before the next is submitted:

1. **shuffle**: a task per file of SOURCE reads it with the single-process backfill's source step
   and writes, for each partition (a hash of the key), the file's events of that partition, with
   their sequence numbers, as a piece under OUT/_shuffle-RUN/;
2. **backfill**: a task per partition replays its pieces in sequence order through the flow
   (AggregateByKey by default) into OUT/part-NNNNN.parquet.

Then, if the part files came out with different column types, the ones that differ are written
again with the types the single file would have (a third, rarely needed, set of tasks), and the
shuffle's pieces are removed.
"""

import asyncio
import os
import time as clock
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial

from storey.cli.backfill import BackfillPlan, BackfillResult
from storey.cli.inputs import Input, InputError, resolve_input
from storey.cli.table_urls import TableUrl, parse_table_url
from storey.core.storage import get_filesystem, is_local
from storey.dtypes import FieldAggregator
from storey.table import Table

from .dask_client import check_client, dask_client, import_distributed, worker_threads
from .job import BackfillJob
from .output_schema import read_schema, retype_file, unified_schema
from .partition_task import aggregate_steps, backfill_partition
from .read_units import read_units
from .row_progress import RowBars
from .shuffle_task import shuffle_unit


class TableHoldsState(ValueError):
    """The --table of a distributed backfill holds aggregation state already."""


@dataclass
class DistributedBackfillResult(BackfillResult):
    """What a distributed backfill did: `rows` events in `seconds` (starting a local cluster
    included), split into `partitions` by key on `threads` worker threads, written to `files`
    (one per partition that got events); the time of each phase."""

    partitions: int = 0
    threads: int = 0
    files: list = field(default_factory=list)
    shuffle_seconds: float = 0.0
    backfill_seconds: float = 0.0


def backfill(
    source,
    *,
    key,
    time,
    out,
    aggregates=None,
    steps=None,
    client=None,
    table=None,
    partitions=None,
    format=None,
    time_format=None,
    storage_options=None,
    overwrite=False,
    progress=False,
):
    """Computes what the single-process backfill of `source` computes, on the workers of a Dask
    cluster, and writes it to the directory `out` as a Parquet dataset of one file per partition.

    The events are split by a hash of their key into `partitions`; each partition runs the
    backfill flow on its keys' events, which reach it in the order the single-process backfill
    reads them (file order, then row order), with the same values and types. The output holds
    every event once, with its features, exactly as the single-process output does; its rows are
    in partition order (`part-00000.parquet`, ...), each partition's in arrival order.

    :param source: Parquet or CSV input: a file, a directory, a glob or an fsspec URL, or a list
        of them, read by every worker (a path all workers see).
    :param key: the key column, or a list of columns.
    :param time: the event time column.
    :param out: the output directory (a local path or an fsspec URL all workers see); it must
        not exist, be empty, or `overwrite` must be true.
    :param aggregates: the `FieldAggregator`s to compute (AggregateByKey), or
    :param steps: a function `steps(table)` returning the steps each partition runs between its
        source and its Parquet target (aggregating into `table`); it is sent to the workers. The
        result equals the single-process one when what the steps give for an event depends only
        on its key's events (not on other keys' events, nor on the clock).
    :param client: a `dask.distributed.Client`, a scheduler address ('tcp://host:8786'), or a
        number of local worker processes to start for the run (None: one per core).
    :param table: a table URL (sqlite:///FILE, postgresql://..., redis://..., optionally
        #TABLE_NAME) where each partition writes its keys' final window state, to seed the online
        store. The table must hold no state yet.
    :param partitions: how many key partitions (default: twice the workers' threads). Each
        partition's keys' state must fit in one worker's memory.
    :param format: 'parquet' or 'csv' (default: from the file names).
    :param time_format: strptime format of CSV times (default: ISO-8601).
    :param storage_options: fsspec options for URLs of `source` and `out`.
    :param overwrite: replace `out` when it holds files.
    :param progress: show progress bars (rows done of rows total) on stderr.
    :returns: a `DistributedBackfillResult`.
    """
    keys = _key_columns(key)
    if not isinstance(time, str) or not time:
        raise TypeError(f"backfill: time must be a column name, got {time!r}")
    steps = _steps_of(aggregates, steps)
    check_client(client)
    if partitions is not None and (isinstance(partitions, bool) or not isinstance(partitions, int)):
        raise TypeError(f"backfill: partitions must be a positive int, got {partitions!r}")
    if partitions is not None and partitions < 1:
        raise ValueError(f"backfill: partitions must be a positive int, got {partitions!r}")
    input = _resolve(source, format, storage_options)
    input.check_columns(keys, "backfill: key")
    input.check_columns([time], "backfill: time")
    for aggregator in aggregates or ():
        if isinstance(aggregator.field, str):
            input.check_columns([aggregator.field], f"backfill: aggregator {aggregator.name!r}")
    if time_format is not None and input.format != "csv":
        raise ValueError("backfill: time_format applies to CSV input only (Parquet times are typed)")
    if isinstance(table, str):
        table = parse_table_url(table)
    elif table is not None and not isinstance(table, TableUrl):
        raise TypeError(f"backfill: table must be a table URL (e.g. 'sqlite:///state.db'), got {table!r}")
    out = _prepare_out(out, overwrite, storage_options)
    return run_distributed_backfill(
        input, keys, time, steps, out, client, table, partitions, time_format, storage_options, progress
    )


def run_distributed_backfill(
    input,
    key,
    time,
    steps,
    out,
    client=None,
    table=None,
    partitions=None,
    time_format=None,
    storage_options=None,
    progress=False,
):
    """Runs a backfill of the resolved `input` (a `storey.cli.inputs.Input`) whose arguments are
    checked, into the existing empty directory `out`; see `backfill`."""
    import_distributed()
    start = clock.perf_counter()
    if table is not None:
        check_table_is_new(table, key)
    units = [_absolute(path) for path in read_units(input, storage_options)]
    plan = BackfillPlan(input, list(key), time, [], out, time_format=time_format)
    job = BackfillJob(
        format=input.format,
        units=tuple(units),
        source_kwargs=plan.source_kwargs(),
        key=tuple(key),
        partitions=partitions or 1,
        out=_absolute(out),
        run=uuid.uuid4().hex[:12],
        steps=steps,
        table=table,
        storage_options=storage_options,
    )
    try:
        # a local cluster's workers are stopped before the leftovers go: none still writes
        with dask_client(client) as dask:
            threads = worker_threads(dask)
            # the tasks report their rows only to a client that shows them
            topic = f"storey-backfill-{job.run}" if progress else None
            job = replace(job, partitions=partitions or max(2 * threads, 1), topic=topic)
            bars = RowBars(dask, topic)
            try:
                started = clock.perf_counter()
                bars.start("shuffle", input.total_rows)
                counts = _run_tasks(
                    dask, bars, job, "shuffle", shuffle_unit, [(u,) for u in range(len(units))]
                )
                shuffled = clock.perf_counter()
                sent = [[u for u in range(len(units)) if counts[u][p]] for p in range(job.partitions)]
                bars.start("backfill", sum(sum(rows) for rows in counts))
                args = [(p, sent[p]) for p in range(job.partitions) if sent[p]]
                outputs = _run_tasks(dask, bars, job, "backfill", backfill_partition, args)
                bars.finish()
                files = [o.path for o in outputs if o.path is not None]
                _retype(dask, job, files)
                finished = clock.perf_counter()
            finally:
                bars.close()
    finally:
        _remove_leftovers(job)
    return DistributedBackfillResult(
        rows=sum(o.rows for o in outputs),
        seconds=clock.perf_counter() - start,
        partitions=job.partitions,
        threads=threads,
        files=files,
        shuffle_seconds=shuffled - started,
        backfill_seconds=finished - shuffled,
    )


def check_table_is_new(table, key):
    """Raises TableHoldsState when the table of `table` (a TableUrl) holds aggregation state
    already: a distributed backfill computes every key's state from its events alone."""
    driver = table.driver(list(key))
    try:
        held = driver._load_aggregation_schema(Table(table.name, driver))
    finally:
        with ThreadPoolExecutor(1) as closing:
            closing.submit(asyncio.run, driver.close()).result()
    if held:
        raise TableHoldsState(
            f"table {table.name!r} in {table.database} already holds the state of aggregators "
            f"{sorted(held)}: a distributed backfill fills a new table (drop it, or name another "
            "with URL#NAME)"
        )


def _run_tasks(dask, bars, job, phase, function, args_list):
    """Runs `function(job, *args)` for each args of `args_list` as Dask tasks; returns their
    results in order. The first task to fail fails the phase (the others are cancelled)."""
    distributed = import_distributed()
    futures = [
        dask.submit(function, job, *args, key=f"storey-{phase}-{job.run}-{i}", pure=False)
        for i, args in enumerate(args_list)
    ]
    index = {future.key: i for i, future in enumerate(futures)}
    results = [None] * len(futures)
    try:
        for future in distributed.as_completed(futures):
            i = index[future.key]
            try:
                results[i] = future.result()
            except Exception as ex:
                task = args_list[i][0]
                what = job.units[task] if phase == "shuffle" else f"partition {task}"
                if not getattr(ex, "__notes__", None):
                    ex.add_note(f"in the {phase} task of {what}")
                if type(ex).__name__ == "KilledWorker":
                    ex.add_note("its workers died: out of memory? more partitions make each one's keys fewer")
                raise
            rows = results[i] if phase == "shuffle" else results[i].rows
            bars.done(i, sum(rows) if phase == "shuffle" else rows)
    except BaseException:
        dask.cancel(futures)
        raise
    return results


def _retype(dask, job, files):
    schemas = [read_schema(path, job.storage_options) for path in files]
    schema = unified_schema(schemas) if schemas else None
    if schema is None:
        return
    differing = [path for path, own in zip(files, schemas) if not own.equals(schema, check_metadata=False)]
    futures = [dask.submit(retype_file, path, schema, job.storage_options, pure=False) for path in differing]
    dask.gather(futures)


def _remove_leftovers(job):
    """Removes the shuffle's pieces, and the temporary files of partition tasks that died."""
    fs, inner = get_filesystem(job.out, job.storage_options)
    _, shuffle = get_filesystem(job.shuffle_dir, job.storage_options)
    if fs.exists(shuffle):
        fs.rm(shuffle, recursive=True)
    for path in fs.ls(inner, detail=False):
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name.startswith(".part-") and name.endswith(".tmp"):
            fs.rm(path)


def _key_columns(key):
    if isinstance(key, str) and key:
        return [key]
    if isinstance(key, list | tuple) and key and all(isinstance(k, str) and k for k in key):
        return list(key)
    raise TypeError(f"backfill: key must be a column name or a list of them, got {key!r}")


def _steps_of(aggregates, steps):
    if (aggregates is None) == (steps is None):
        raise TypeError(
            "backfill: give either aggregates (FieldAggregators) or steps (a function of the table)"
        )
    if steps is not None:
        if not callable(steps):
            raise TypeError(f"backfill: steps must be a function of the table returning steps, got {steps!r}")
        return steps
    aggregates = list(aggregates)
    if not aggregates or not all(isinstance(a, FieldAggregator) for a in aggregates):
        raise TypeError(
            f"backfill: aggregates must be a non-empty list of FieldAggregators, got {aggregates!r}"
        )
    return partial(aggregate_steps, aggregates)


def _resolve(source, fmt, storage_options):
    """One Input of every file of `source` (a SOURCE or a list of them)."""
    if isinstance(source, str):
        return resolve_input(source, fmt, storage_options)
    if not isinstance(source, list | tuple) or not source or not all(isinstance(s, str) for s in source):
        raise TypeError(f"backfill: source must be a path or URL, or a list of them, got {source!r}")
    inputs = [resolve_input(s, fmt, storage_options) for s in source]
    formats = {i.format for i in inputs}
    if len(formats) > 1:
        raise InputError(f"backfill: {source!r} holds both Parquet and CSV files: pass format")
    columns = list(dict.fromkeys(c for i in inputs for c in i.columns))
    totals = [i.total_rows for i in inputs]
    return Input(
        ", ".join(source),
        formats.pop(),
        [p for i in inputs for p in i.paths],
        columns,
        None if None in totals else sum(totals),
    )


def _prepare_out(out, overwrite, storage_options):
    """`out`, checked to be a directory name, made to exist and be empty."""
    if not isinstance(out, str) or not out:
        raise TypeError(f"backfill: out must be a directory path or URL, got {out!r}")
    if out.lower().endswith((".parquet", ".pq")):
        raise ValueError(f"backfill: out {out!r} must name a directory (a dataset of one file per partition)")
    fs, inner = get_filesystem(out, storage_options)
    if fs.exists(inner) and (not fs.isdir(inner) or fs.ls(inner)):
        if not overwrite:
            raise FileExistsError(f"backfill: out {out} already exists: pass overwrite=True to replace it")
        fs.rm(inner, recursive=True)
    fs.makedirs(inner, exist_ok=True)
    return out


def _absolute(path):
    """A local path as an absolute one (workers may run elsewhere); URLs as they are."""
    if "://" in path:
        return path
    fs, _ = get_filesystem(path)
    return os.path.abspath(path) if is_local(fs) else path
