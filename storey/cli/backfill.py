"""`storey backfill`: per-key window features of a Parquet or CSV history, written as Parquet.

The command builds an ordinary storey flow, the one `--print-flow` prints:

    ParquetSource/CSVSource(SOURCE, key_field=KEY, time_field=TIME)
      -> AggregateByKey([FieldAggregator per SPEC], Table(..., NoopDriver() or the --table driver))
      -> ParquetTarget(OUT)

with a pass-through step after the source that counts rows for the progress bar.
"""

import json
import time
from dataclasses import dataclass, field

from .inputs import Input
from .progress import CountRows, Progress

# Rows per file when OUT is a directory: big files, unlike ParquetTarget's default of 10000.
ROWS_PER_FILE = 1_000_000


@dataclass
class BackfillPlan:
    """Everything one backfill needs: what to read, which features, where to write."""

    input: Input
    key: list
    time: str
    specs: list
    out: str
    partition_by: list = field(default_factory=list)
    time_format: str | None = None
    rows_per_file: int = ROWS_PER_FILE
    # where the final per-key state is kept (a storey.cli.table_urls.TableUrl), or None (memory)
    table: object = None
    time_unit: str | None = None

    @property
    def single_file(self):
        return self.out.lower().endswith((".parquet", ".pq")) and not self.partition_by

    @property
    def key_arg(self):
        return self.key[0] if len(self.key) == 1 else list(self.key)

    def source_kwargs(self):
        kwargs = {"key_field": self.key_arg, "time_field": self.time}
        if self.input.format == "csv":
            kwargs = {"header": True, "build_dict": True, **kwargs}
            if self.time_format is not None:
                kwargs["timestamp_format"] = self.time_format
        if self.time_unit is not None:
            kwargs["time_unit"] = self.time_unit
        return kwargs

    def target_kwargs(self):
        if self.single_file:
            return {}
        return {"partition_cols": list(self.partition_by), "max_events": self.rows_per_file}


def source_step(plan):
    from storey.sources import CSVSource, ParquetSource

    cls = ParquetSource if plan.input.format == "parquet" else CSVSource
    return cls(plan.input.source_arg, **plan.source_kwargs())


def aggregate_step(plan, table):
    from storey.aggregations import AggregateByKey

    return AggregateByKey([spec.to_aggregator() for spec in plan.specs], table)


def new_table(plan=None):
    """The table a backfill aggregates into: the --table one, or one in memory."""
    if plan is not None and plan.table is not None:
        return plan.table.table(plan.key)
    from storey.drivers import NoopDriver
    from storey.table import Table

    return Table("features", NoopDriver())


def build_backfill_flow(plan, progress=None, table=None):
    """The backfill flow (its source step), counting rows into `progress` when given."""
    from storey.flow import build_flow
    from storey.targets import ParquetTarget

    steps = [source_step(plan)]
    if progress is not None:
        steps.append(CountRows(progress))
    steps.append(aggregate_step(plan, table if table is not None else new_table(plan)))
    steps.append(ParquetTarget(plan.out, **plan.target_kwargs()))
    return build_flow(steps)


def literal(value):
    """Python source for a str, number, None or list of them (strings in double quotes)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return repr(value)


def _call(name, args, kwargs, indent):
    parts = [literal(a) for a in args] + [f"{k}={literal(v)}" for k, v in kwargs.items()]
    one_line = f"{name}({', '.join(parts)})"
    if len(one_line) + indent <= 100:
        return one_line
    pad = " " * (indent + 4)
    return f"{name}(\n" + "".join(f"{pad}{p},\n" for p in parts) + " " * indent + ")"


def backfill_python(plan):
    """The Python program that computes what `storey backfill` computes for this plan."""
    source_cls = "ParquetSource" if plan.input.format == "parquet" else "CSVSource"
    windows = {"FixedWindows" if s.fixed else "SlidingWindows" for s in plan.specs}
    if plan.table is None:
        driver_cls, table_name, driver = "NoopDriver", "features", "NoopDriver()"
    else:
        driver_cls, table_name = plan.table.driver_class, plan.table.name
        args, kwargs = plan.table.driver_args(plan.key)
        driver = _call(driver_cls, args, kwargs, 12)
    names = {
        "AggregateByKey",
        "FieldAggregator",
        driver_cls,
        "ParquetTarget",
        "Table",
        "build_flow",
        source_cls,
    }
    # classes first, then functions, as isort orders them
    imports = sorted(names | windows, key=lambda name: (name[0].islower(), name))
    aggregators = "".join(f"                {spec.to_python()},\n" for spec in plan.specs)
    source = _call(source_cls, [plan.input.source_arg], plan.source_kwargs(), 8)
    target = _call("ParquetTarget", [plan.out], plan.target_kwargs(), 8)
    import_lines = "".join(f"    {name},\n" for name in imports)
    return (
        f"from storey import (\n{import_lines})\n"
        "\n"
        "flow = build_flow(\n"
        "    [\n"
        f"        {source},\n"
        "        AggregateByKey(\n"
        "            [\n"
        f"{aggregators}"
        "            ],\n"
        f"            Table({literal(table_name)}, {driver}),\n"
        "        ),\n"
        f"        {target},\n"
        "    ]\n"
        ")\n"
        "flow.run().await_termination()\n"
    )


@dataclass
class BackfillResult:
    """How many rows a backfill read, how many it left out for a missing key, and how long it
    took."""

    rows: int
    seconds: float
    skipped: int = 0

    @property
    def rows_per_second(self):
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def run_backfill(plan, show_progress=True):
    """Runs the backfill flow; returns the rows read and the time taken."""
    progress = Progress("backfill", total=plan.input.total_rows, enabled=show_progress)
    start = time.perf_counter()
    try:
        flow = build_backfill_flow(plan, progress)
        flow.run().await_termination()
    finally:
        progress.close()
    return BackfillResult(progress.count, time.perf_counter() - start, flow.skipped_rows)
