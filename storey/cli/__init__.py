"""The `storey` command line (also `python -m storey`).

    storey backfill SOURCE --key COL --time COL --features SPEC --out PATH [--workers N | --scheduler ADDR]
    storey demo
    storey sample OUT

Bad arguments and unreadable input end the command with one line on stderr and a non-zero exit
status (2 for bad arguments or input, 1 for a failure while running, 130 when interrupted).
"""

import argparse
import sys
import traceback

from .. import __version__
from .feature_spec import SpecError
from .quick_exit import end_after_exit_handlers

PROG = "storey"
_TIME_PARTS = ("$key", "$date", "$year", "$month", "$day", "$hour", "$minute", "$second")


class CliError(Exception):
    """Bad arguments or input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (with where to find help)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text):
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _non_negative_int(text):
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _column_list(text):
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of column names")
    return names


BACKFILL_EPILOG = """\
SPEC: [NAME=]FIELD:AGGRS@WINDOWS, several separated by ';' or given as several --features.
  AGGRS     comma-separated: count sum sqr avg min max first last stddev stdvar
  WINDOWS   sliding: 1h,24h or 1h,24h/10m (windows, then optionally '/' and the bucket period)
            fixed:   fixed:1h,1d (windows aligned to round times)
  durations are digits then s, m, h or d.
  Features are named NAME_AGGR_WINDOW (NAME defaults to FIELD), e.g. amount_sum_24h;
  two SPECs of one field need different names: amount:sum@1h;today=amount:sum@fixed:1d

examples:
  storey backfill events.parquet --key user_id --time timestamp \\
      --features 'amount:sum,avg,max@1h,24h/10m' --out features.parquet
  storey backfill 's3://bucket/events/*.parquet' --key user_id --time timestamp \\
      --features 'amount:max@7d' --features 'today=amount:count@fixed:1d' \\
      --out features/ --partition-by '$date'
  storey backfill 'events/*.parquet' --key user_id --time timestamp \\
      --features 'amount:sum,max@1h,24h' --out features/ --workers 4   # split by key (storey[dask])
"""


def _parser():
    parser = _Parser(
        prog=PROG,
        description="Streaming feature pipelines: per-key window features, in bulk and live.",
    )
    parser.add_argument("--version", action="version", version=f"storey {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of a failure")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    backfill = commands.add_parser(
        "backfill",
        help="compute per-key window features of a Parquet or CSV history, written as Parquet",
        description="Compute per-key window features (AggregateByKey) for every event of SOURCE and "
        "write the events with their features to OUT as Parquet.",
        epilog=BACKFILL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backfill.add_argument(
        "source",
        metavar="SOURCE",
        help="Parquet or CSV (with a header line): a file, a directory, a glob or an fsspec URL",
    )
    backfill.add_argument(
        "--key",
        required=True,
        type=_column_list,
        metavar="COL",
        help="key column (or COL,COL for a list key)",
    )
    backfill.add_argument("--time", required=True, metavar="COL", help="event time column")
    backfill.add_argument(
        "--features",
        required=True,
        action="append",
        metavar="SPEC",
        help="features to compute, e.g. 'amount:sum,avg,max@1h,24h/10m' (repeatable; see below)",
    )
    backfill.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="output: a .parquet file, or a directory of Parquet files",
    )
    backfill.add_argument(
        "--partition-by",
        type=_column_list,
        default=[],
        metavar="COLS",
        help="partition the output directory by these columns or $key, $date, $year, $month, $day, $hour",
    )
    backfill.add_argument(
        "--format", choices=("parquet", "csv"), help="format of SOURCE (default: from file names)"
    )
    backfill.add_argument(
        "--time-format", metavar="FMT", help="strptime format of CSV times (default: ISO-8601)"
    )
    backfill.add_argument(
        "--time-unit",
        choices=("s", "ms", "us", "ns"),
        help="unit of an integer time column: epoch seconds (default), ms, us or ns",
    )
    backfill.add_argument(
        "--rows-per-file",
        type=_positive_int,
        default=None,
        metavar="N",
        help="rows per output file in a directory",
    )
    backfill.add_argument(
        "--table",
        metavar="URL",
        help="also keep every key's final window state in this table, for a live flow to continue: "
        "sqlite:///FILE, postgresql://USER@HOST:PORT/DB or redis://HOST:PORT/DB, optionally #TABLE_NAME, "
        "or v3io:///CONTAINER/PATH (with V3IO_API and V3IO_ACCESS_KEY)",
    )
    cluster = backfill.add_mutually_exclusive_group()
    cluster.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="split the work by key across N local worker processes (Dask; OUT is then a directory)",
    )
    cluster.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="split the work by key across the workers of the Dask scheduler at ADDRESS (tcp://HOST:8786)",
    )
    backfill.add_argument(
        "--partitions",
        type=_positive_int,
        metavar="N",
        help="with --workers/--scheduler: key partitions (default: twice the workers' threads)",
    )
    backfill.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    backfill.add_argument(
        "--print-flow",
        action="store_true",
        help="print the equivalent Python program and exit without running it",
    )
    backfill.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")

    demo = commands.add_parser(
        "demo",
        help="generate sample events, backfill their features, then emit the last ones live and compare",
        description="Generate a realistic event history (card payments) in a temporary folder, backfill "
        "window features from it in bulk, then emit its last events live through SyncEmitSource with the "
        "same flow on the same table, and check they get identical features. Prints events/s for both.",
    )
    demo.add_argument("--events", type=_positive_int, default=None, metavar="N", help="events to generate")
    demo.add_argument("--keys", type=_positive_int, default=None, metavar="N", help="distinct users (keys)")
    demo.add_argument(
        "--days", type=_positive_int, default=30, metavar="N", help="days of history (default 30)"
    )
    demo.add_argument(
        "--live", type=_positive_int, default=None, metavar="N", help="events emitted live at the end"
    )
    demo.add_argument(
        "--features", action="append", metavar="SPEC", help="features to compute (as for backfill)"
    )
    demo.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    demo.add_argument("--keep", metavar="DIR", help="write the events and features to DIR and keep them")
    demo.add_argument("--quiet", "-q", action="store_true", help="no progress bars")

    sample = commands.add_parser(
        "sample",
        help="write a sample event history (card payments) to a Parquet or CSV file",
        description="Write a realistic event history (card payments: user_id, timestamp, amount, category, "
        "online) to OUT, as Parquet or, for a name ending in .csv, CSV.",
    )
    sample.add_argument("out", metavar="OUT", help="file to write (.parquet or .csv)")
    sample.add_argument(
        "--events", type=_positive_int, default=1_000_000, metavar="N", help="default 1000000"
    )
    sample.add_argument("--keys", type=_positive_int, default=5_000, metavar="N", help="default 5000")
    sample.add_argument("--days", type=_positive_int, default=30, metavar="N", help="default 30")
    sample.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    return parser


def _backfill_plan(args):
    from .backfill import ROWS_PER_FILE, BackfillPlan
    from .feature_spec import parse_specs
    from .inputs import InputError, resolve_input

    try:
        specs = parse_specs(args.features)
    except SpecError as ex:
        raise CliError(str(ex)) from ex
    try:
        source = resolve_input(args.source, args.format)
        source.check_columns(args.key, "--key")
        source.check_columns([args.time], "--time")
        for spec in specs:
            source.check_columns([spec.field], f"--features {spec.to_text()!r}")
            source.check_numbers(spec.field, f"--features {spec.to_text()!r}")
        features = {name for spec in specs for name in spec.feature_names()}
        for col in args.partition_by:
            if col.startswith("$"):
                if col not in _TIME_PARTS:
                    raise CliError(
                        f"--partition-by: unknown {col!r}; use a column or one of {', '.join(_TIME_PARTS)}"
                    )
            elif col not in features:
                source.check_columns([col], "--partition-by")
    except InputError as ex:
        raise CliError(str(ex)) from ex
    if args.time_format is not None and source.format != "csv":
        raise CliError("--time-format applies to CSV input only (Parquet times are typed)")
    table = None
    if args.table is not None:
        from .table_urls import TableUrlError, parse_table_url

        try:
            table = parse_table_url(args.table)
        except TableUrlError as ex:
            raise CliError(str(ex)) from ex
    if args.time_format is not None and args.time_unit is not None:
        raise CliError("--time-unit (integer times) and --time-format (text times) exclude each other")
    plan = BackfillPlan(
        source,
        args.key,
        args.time,
        specs,
        args.out,
        args.partition_by,
        args.time_format,
        args.rows_per_file or ROWS_PER_FILE,
        table,
        args.time_unit,
    )
    if args.rows_per_file is not None and plan.single_file:
        raise CliError("--rows-per-file applies to a directory OUT only (OUT ends in .parquet)")
    from .workers import worker_options_problem

    problem = worker_options_problem(args, plan)
    if problem is not None:
        raise CliError(problem)
    return plan


def _prepare_out(out, overwrite):
    """The StagedOutput the run writes OUT into; CliError when OUT exists (without --overwrite)
    or cannot be written (found now, not after the work)."""
    from storey.core.storage import get_filesystem, split

    from .output import StagedOutput

    fs, path = get_filesystem(out)
    if fs.exists(path) and not (fs.isdir(path) and not fs.ls(path)) and not overwrite:
        raise CliError(f"--out {out} already exists: pass --overwrite to replace it")
    parent = split(fs, path)[0]
    try:
        if parent:
            fs.makedirs(parent, exist_ok=True)
    except OSError as ex:
        raise CliError(f"--out {out}: cannot create {parent}: {ex.strerror or ex}") from ex
    try:
        return StagedOutput(out)
    except OSError as ex:
        raise CliError(f"--out {out}: cannot write in {parent or '.'}: {ex.strerror or ex}") from ex


def _backfill(args):
    from dataclasses import replace

    from storey.core.times import TimeOutOfRange

    from .backfill import backfill_python, run_backfill
    from .progress import on_terminal

    plan = _backfill_plan(args)
    if args.print_flow:
        sys.stdout.write(backfill_python(plan))
        return 0
    from .workers import on_workers, run_on_workers

    show_progress = not args.quiet and on_terminal()
    staged = _prepare_out(args.out, args.overwrite)
    try:
        staged_plan = replace(plan, out=staged.url)
        if on_workers(args):
            result = run_on_workers(staged_plan, args, show_progress)
        else:
            result = run_backfill(staged_plan, show_progress=show_progress)
        staged.publish()
    except Exception as ex:
        if isinstance(ex, TimeOutOfRange) and args.time_unit is None:
            ex.add_note("--time-unit gives the unit of an integer time column")
        if args.source not in describe(ex):
            ex.add_note(f"backfilling {args.source}")
        raise
    finally:
        staged.discard()
    key = ",".join(plan.key)
    if result.skipped:
        rows = f"{result.skipped:,} row{'s' if result.skipped != 1 else ''}"
        print(f"{PROG} {args.command}: {rows} without a --key ({key}) left out", file=sys.stderr)
    if not args.quiet:
        features = sum(len(s.feature_names()) for s in plan.specs)
        if result.rows == 0 and result.skipped:
            print(f"{args.source}: no row has a --key ({key}): nothing written")
        elif result.rows == 0:
            print(f"{args.source} has no rows: nothing written")
        else:
            print(
                f"{result.rows:,} rows in {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s): "
                f"{features} feature{'s' if features != 1 else ''} written to {args.out}"
            )
    return 0


def _sample(args):
    from .sample_data import generate_events, write_events

    if not args.out.lower().endswith((".parquet", ".pq", ".csv")):
        raise CliError(f"OUT {args.out!r} must end in .parquet, .pq or .csv")
    try:
        write_events(generate_events(args.events, args.keys, args.days, args.seed), args.out)
    except OSError as ex:
        raise CliError(f"cannot write {args.out}: {ex}") from ex
    print(f"{args.events:,} events of {args.keys:,} users written to {args.out}")
    return 0


def _demo(args):
    from .demo import run_demo

    specs_text = args.features
    if specs_text is not None:
        from .feature_spec import parse_specs

        try:
            parse_specs(specs_text)
        except SpecError as ex:
            raise CliError(str(ex)) from ex
    return run_demo(args)


def describe(ex):
    """One line for a failure: the message of the error (of its original when it was re-raised
    across threads), with its notes."""
    original = ex
    while (
        original.__cause__ is not None
        and type(original.__cause__) is type(original)
        and original.__cause__.args == original.args
    ):
        original = original.__cause__
    text = str(original).strip()
    line = text.splitlines()[0] if text else ""
    notes = [n.strip() for e in (original, ex) for n in getattr(e, "__notes__", ()) if n.strip()]
    notes = list(dict.fromkeys(notes))
    name = type(original).__name__
    line = f"{name}: {line}" if line else name
    if notes:
        line += f" ({'; '.join(notes)})"
    return line


def run():
    """The `storey` command (and `python -m storey`): `main` on the process's arguments, the
    process then ending as soon as its exit handlers have run (see `quick_exit`)."""
    status = main()
    end_after_exit_handlers(status)
    return status


def main(argv=None):
    """Runs the storey command line; returns its exit status (used as the process's)."""
    parser = _parser()
    args = parser.parse_args(argv)
    prog = f"{PROG} {args.command}"
    handler = {"backfill": _backfill, "demo": _demo, "sample": _sample}[args.command]
    try:
        return handler(args)
    except CliError as ex:
        if args.traceback:
            traceback.print_exc()
        message = " ".join(str(ex).splitlines())
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as ex:
        if args.traceback:
            traceback.print_exc()
        print(f"{prog}: failed: {describe(ex)}", file=sys.stderr)
        return 1
