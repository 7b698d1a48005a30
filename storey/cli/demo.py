"""`storey demo`: the main job end to end on generated data, bulk and live, with the same flow.

1. Generate card payments (a few million events, a few thousand users) into a folder, as two
   Parquet files: the history, and the last events (the "live" ones).
2. Bulk backfill: both files -> AggregateByKey -> ParquetTarget; events/s.
3. Live, across a restart: the history backfilled in bulk into a Table kept in an SQLite file,
   then a second process opens the same table and emits the last events one at a time through
   SyncEmitSource -> AggregateByKey (same features) -> Complete, each emit awaited, continuing the
   windows the first process left; events/s and latency.
4. The live events' features compared with those the uninterrupted bulk backfill computed for
   them: they must be identical.
"""

import math
import multiprocessing
import os
import tempfile
import time

import numpy as np

from . import CliError
from .backfill import BackfillPlan, aggregate_step, build_backfill_flow, new_table, source_step
from .feature_spec import parse_specs
from .inputs import resolve_input
from .progress import CountRows, Progress, on_terminal
from .sample_data import DEFAULT_FEATURES, KEY, NUMERIC_COLUMNS, TIME, generate_events, write_events

DEFAULT_EVENTS = 2_000_000
DEFAULT_KEYS = 5_000
DEFAULT_LIVE = 10_000
WARMUP_EVENTS = 2_000


def _say(text=""):
    print(text, flush=True)


def _rate(count, seconds):
    return f"{count / seconds:,.0f} events/s" if seconds > 0 else "-"


def run_demo(args):
    n_events = args.events or DEFAULT_EVENTS
    n_keys = args.keys or DEFAULT_KEYS
    n_live = args.live or min(DEFAULT_LIVE, max(n_events // 10, 1))
    if n_live >= n_events:
        raise CliError(f"--live {n_live} must be less than --events {n_events}")
    specs_text = args.features or [DEFAULT_FEATURES]
    specs = parse_specs(specs_text)
    for spec in specs:
        if spec.field not in NUMERIC_COLUMNS:
            raise CliError(
                f"--features {spec.to_text()!r}: the sample events have no number column {spec.field!r}; "
                f"use {' or '.join(NUMERIC_COLUMNS)}"
            )
    show = not args.quiet and on_terminal()
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        return _run(args.keep, n_events, n_keys, n_live, args.days, args.seed, specs, show, kept=True)
    with tempfile.TemporaryDirectory(prefix="storey-demo-") as folder:
        return _run(folder, n_events, n_keys, n_live, args.days, args.seed, specs, show)


def _plan(path, specs, out):
    return BackfillPlan(resolve_input(path), [KEY], TIME, specs, out)


def _run(folder, n_events, n_keys, n_live, days, seed, specs, show, kept=False):
    history_path = os.path.join(folder, "events-history.parquet")
    latest_path = os.path.join(folder, "events-latest.parquet")
    features_path = os.path.join(folder, "features.parquet")
    n_features = sum(len(s.feature_names()) for s in specs)

    _say(f"storey demo: card payments of {n_keys:,} users over {days} days, {n_events:,} events")
    start = time.perf_counter()
    events = generate_events(n_events, n_keys, days, seed)
    write_events(events.slice(0, n_events - n_live), history_path)
    write_events(events.slice(n_events - n_live), latest_path)
    _say(f"  generated in {time.perf_counter() - start:.1f} s into {folder}")
    _say(f"  features: {'; '.join(s.to_text() for s in specs)} ({n_features} per event)")

    # Numba compiles the kernels on first use (cached on disk after): keep that out of the figures
    start = time.perf_counter()
    warmup_path = os.path.join(folder, "warmup.parquet")
    warmup_out = os.path.join(folder, "warmup-features.parquet")
    write_events(generate_events(WARMUP_EVENTS, 10, 1, seed), warmup_path)
    build_backfill_flow(_plan(warmup_path, specs, warmup_out)).run().await_termination()
    _live_emit(specs, new_table(), _rows(warmup_path)[:10], show=False)
    for path in (warmup_path, warmup_out):
        if os.path.exists(path):
            os.remove(path)
    _say(f"  kernels ready in {time.perf_counter() - start:.1f} s (compiled once, then cached)")

    _say()
    _say("1. bulk backfill: ParquetSource -> AggregateByKey -> ParquetTarget")
    plan = BackfillPlan(
        resolve_input(os.path.join(folder, "events-*.parquet")), [KEY], TIME, specs, features_path
    )
    progress = Progress("   backfill", total=n_events, enabled=show)
    start = time.perf_counter()
    try:
        build_backfill_flow(plan, progress).run().await_termination()
    finally:
        progress.close()
    seconds = time.perf_counter() - start
    _say(f"   {n_events:,} events in {seconds:.2f} s: {_rate(n_events, seconds)} -> {features_path}")

    _say()
    database_file = os.path.join(folder, "features.db")
    database = f"sqlite:///{database_file}"
    _say(f"2. live across a restart: the first {n_events - n_live:,} events backfilled into a table kept")
    _say(f"   in SQLite ({database_file}); then a second process emits the last {n_live:,} one at a")
    _say("   time on that table: SyncEmitSource -> AggregateByKey (same features) -> Complete")
    history_plan = _plan(history_path, specs, features_path)
    progress = Progress("   history", total=n_events - n_live, enabled=show)
    start = time.perf_counter()
    try:
        _backfill_into(history_plan, stored_table(database), progress)
    finally:
        progress.close()
    seconds = time.perf_counter() - start
    _say(
        f"   history: {n_events - n_live:,} events in {seconds:.2f} s: {_rate(n_events - n_live, seconds)}, "
        "every key's windows saved"
    )
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        results, latencies, seconds, pid = pool.apply(
            live_process, (database, [s.to_text() for s in specs], latest_path, show)
        )
    _say(f"   live, in process {pid} (this one is {os.getpid()}): the windows continue from the table")
    p50, p99 = (np.percentile(latencies, q) * 1e6 for q in (50, 99))
    _say(
        f"   live: {n_live:,} awaited emits in {seconds:.2f} s: {_rate(n_live, seconds)} "
        f"(latency p50 {p50:.0f} us, p99 {p99:.0f} us)"
    )

    _say()
    feature_names = [name for s in specs for name in s.feature_names()]
    bulk = _tail_features(features_path, feature_names, n_live)
    difference = _first_difference(bulk, results, feature_names)
    if difference is not None:
        _say(f"3. DIFFERENT: {difference}")
        return 1
    _say(
        f"3. identical: the {n_live:,} live events got exactly the features the bulk backfill "
        f"computed for them ({n_features} each)"
    )
    _say()
    source = os.path.join(folder, "events-*.parquet") if kept else "EVENTS.parquet"
    key, time_ = (KEY, TIME) if kept else ("COL", "COL")
    _say(f"{'Again' if kept else 'Your own data'}: storey backfill '{source}' --key {key} --time {time_} \\")
    _say(f"    --features '{';'.join(s.to_text() for s in specs)}' --out features.parquet")
    _say("(add --print-flow to see the same flow as Python)")
    return 0


def stored_table(database):
    """The demo's table, kept in the SQLite file `database` names."""
    from .table_urls import parse_table_url

    return parse_table_url(database).table([KEY])


def live_process(database, specs_text, latest_path, show):
    """The live half of the demo, run in a process of its own: the table kept in `database`, then
    the latest events emitted one at a time; returns (results, latencies, seconds, process id)."""
    specs = parse_specs(specs_text)
    # the kernels load from Numba's disk cache on first use: keep that out of the figures
    rows = _rows(latest_path)
    _live_emit(specs, new_table(), rows[:10], show=False)
    results, latencies, seconds = _live_emit(specs, stored_table(database), rows, show)
    return results, latencies, seconds, os.getpid()


def _backfill_into(plan, table, progress):
    from storey.flow import build_flow

    build_flow(
        [source_step(plan), CountRows(progress), aggregate_step(plan, table)]
    ).run().await_termination()


def _rows(path):
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _live_emit(specs, table, rows, show):
    """Emits `rows` one at a time, each awaited; returns (result bodies, latencies, seconds)."""
    from storey.aggregations import AggregateByKey
    from storey.flow import Complete, build_flow
    from storey.sources import SyncEmitSource

    flow = build_flow(
        [SyncEmitSource(), AggregateByKey([s.to_aggregator() for s in specs], table), Complete()]
    )
    controller = flow.run()
    results = []
    latencies = np.empty(len(rows))
    progress = Progress("   live", total=len(rows), unit="events", enabled=show)
    clock = time.perf_counter
    start = clock()
    try:
        for i, row in enumerate(rows):
            t0 = clock()
            results.append(controller.emit(row, key=row[KEY], event_time=row[TIME]).await_result())
            latencies[i] = clock() - t0
            if i % 256 == 255:
                progress.update(256)
        progress.update(len(rows) % 256)
    finally:
        controller.terminate()
        controller.await_termination()
        progress.close()
    return results, latencies, clock() - start


def _tail_features(path, names, n):
    """The last n rows of the bulk output, feature columns only, as lists (None where absent)."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    present = [name for name in names if name in schema.names]
    table = pq.read_table(path, columns=present)
    table = table.slice(table.num_rows - n)
    columns = {name: table.column(name).to_pylist() for name in present}
    return [{name: columns[name][i] for name in present if columns[name][i] is not None} for i in range(n)]


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _first_difference(bulk, live, names):
    if len(bulk) != len(live):
        return f"{len(bulk)} bulk rows but {len(live)} live results"
    for i, (b, body) in enumerate(zip(bulk, live, strict=True)):
        for name in names:
            lv = body.get(name) if isinstance(body, dict) else None
            bv = b.get(name)
            if lv is None and bv is None:
                continue
            if lv is None or bv is None or not _same(bv, lv):
                return f"live event {i}: {name} is {lv!r} live but {bv!r} in bulk"
    return None
