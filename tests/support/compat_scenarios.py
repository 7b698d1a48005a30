"""Flows written as storey 1.0.6's users write them, run the same way on the reference and on
this project.

Each scenario is a function `(inputs, tmp_path) -> output` that uses only storey's public names
(and its per-event interface for custom steps), so that it runs under either implementation. The
reference's outputs are recorded in tests/data/compat/<name>.json (with the inputs they were
recorded for); `tests/test_compat.py` runs every scenario here and compares.
"""

import asyncio
import datetime as dt
import glob
import os
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq

import storey
from storey import (
    AsyncEmitSource,
    Batch,
    Choice,
    Complete,
    Context,
    CSVSource,
    Event,
    Extend,
    Filter,
    FlatMap,
    Map,
    MapClass,
    MapWithState,
    NoopDriver,
    ParquetTarget,
    Reduce,
    ReduceToDataFrame,
    SyncEmitSource,
    Table,
    ToDataFrame,
    build_flow,
)
from storey.steps import Flatten, ForEach, Partition
from tests.support.conformance import decode, encode
from tests.support.scenario_registry import T0, collect, raised, registry

SCENARIOS, scenario = registry()


def _run(steps, items, source=None):
    """Runs `build_flow([source, *steps])`, emitting each item (a body, or (body, key) pair)."""
    controller = build_flow([source or SyncEmitSource(), *steps]).run()
    for item in items:
        if isinstance(item, tuple):
            controller.emit(item[0], key=item[1], event_time=T0)
        else:
            controller.emit(item, event_time=T0)
    controller.terminate()
    return controller.await_termination()


def _parquet_dir(root):
    """A Parquet output as the reference writes it: each partition directory's rows, sorted."""
    out = {}
    for path in sorted(glob.glob(os.path.join(root, "**", "*.parquet"), recursive=True)):
        directory = os.path.relpath(os.path.dirname(path), root)
        rows = pq.read_table(path).to_pylist()
        out.setdefault(directory, []).extend(rows)
    return {d: sorted(rows, key=repr) for d, rows in out.items()}


# ---- 1. data written right


@scenario({"bodies": [[i % 2, f"s{i}"] for i in range(6)]})
def parquet_list_bodies_map_to_columns_by_position(inputs, tmp_path):
    """ParquetTarget with `columns` fed list bodies: each item goes to the column at its position,
    partition columns included: partition_cols='my_int' as a string, a partition column listed
    second, typed columns, a partition by key and field, and a single file with index_cols (the
    list then holds the index columns' values first)."""
    bodies = inputs["bodies"]
    out = {}
    flows = {
        "by_field": dict(columns=["my_int", "my_string"], partition_cols="my_int"),
        "typed": dict(columns=[("my_int", "int"), ("my_string", "str")], partition_cols=["my_int"]),
        "key_then_field": dict(columns=["my_int", "my_string"], partition_cols=["$key", "my_int"]),
    }
    for name, kwargs in flows.items():
        _run([ParquetTarget(str(tmp_path / name), **kwargs)], [(list(b), "k") for b in bodies])
        out[name] = _parquet_dir(str(tmp_path / name))
    second = ParquetTarget(str(tmp_path / "d"), columns=["my_string", "my_int"], partition_cols=["my_int"])
    _run([second], [[s, i] for i, s in bodies])
    out["partition_column_second"] = _parquet_dir(str(tmp_path / "d"))
    single = str(tmp_path / "e.parquet")
    _run(
        [ParquetTarget(single, columns=["my_int", "my_string"], index_cols=["idx"])],
        [[f"i{j}", *b] for j, b in enumerate(bodies)],
    )
    frame = pd.read_parquet(single)
    out["single_file_with_index"] = {
        "rows": frame.reset_index().to_dict("records"),
        "index": list(frame.index.names),
    }
    typed_single = str(tmp_path / "f.parquet")
    _run(
        [ParquetTarget(typed_single, columns=[("my_int", "int"), ("my_string", "str")])],
        [list(b) for b in bodies],
    )
    out["single_file_typed"] = pq.read_table(typed_single).to_pylist()
    return out


@scenario({"csv": "1,a\n2,b\n1,c\n"})
def parquet_csv_list_rows_partitioned(inputs, tmp_path):
    """CSVSource (no header: list bodies) -> ParquetTarget(columns=['my_int', 'my_string'],
    partition_cols=['my_int'])."""
    path = tmp_path / "in.csv"
    path.write_text(inputs["csv"])
    root = str(tmp_path / "out")
    build_flow(
        [
            CSVSource(str(path)),
            ParquetTarget(root, columns=["my_int", "my_string"], partition_cols=["my_int"]),
        ]
    ).run().await_termination()
    return _parquet_dir(root)


@scenario({"bodies": [{"my_int": i % 2, "my_string": f"s{i}"} for i in range(4)]})
def parquet_partition_column_named_in_columns(inputs, tmp_path):
    """A partition column also named in `columns` (dict bodies, untyped and typed): the directories
    hold its values, and reading the directory back (ParquetSource, pandas) gives them."""
    out = {}
    for name, columns in (
        ("untyped", ["my_int", "my_string"]),
        ("typed", [("my_int", "int"), ("my_string", "str")]),
    ):
        root = str(tmp_path / name)
        _run([ParquetTarget(root, columns=columns, partition_cols=["my_int"])], inputs["bodies"])
        back = build_flow([storey.ParquetSource(root), collect()]).run().await_termination()
        out[name] = {
            "files": _parquet_dir(root),
            "read_back": sorted(back, key=repr),
            "pandas": sorted(pd.read_parquet(root).astype({"my_int": int}).to_dict("records"), key=repr),
        }
    return out


class _Passing(storey.Flow):
    """A step written against storey's per-event interface that passes events on."""

    async def _do(self, event):
        if event is storey.dtypes._termination_obj:
            return await self._do_downstream(event)
        await self._do_downstream(event)
        return None


@scenario({"bodies": [{"k": i % 2, "v": i} for i in range(4)], "flush_after_seconds": 0.5})
def parquet_flush_after_seconds_with_a_sync_source(inputs, tmp_path):
    """SyncEmitSource -> (a custom per-event step) -> ParquetTarget(flush_after_seconds=N): the
    files are written N seconds after the first event, before the flow terminates."""
    out = {}
    for name, steps in (("plain", []), ("custom_step", [_Passing()])):
        root = str(tmp_path / name)
        target = ParquetTarget(root, partition_cols=["k"], flush_after_seconds=inputs["flush_after_seconds"])
        controller = build_flow([SyncEmitSource(), *steps, target]).run()
        for body in inputs["bodies"]:
            controller.emit(body, event_time=T0)
        deadline = dt.datetime.now() + dt.timedelta(seconds=10)
        while len(_parquet_dir(root)) < 2 and dt.datetime.now() < deadline:
            asyncio.run(asyncio.sleep(0.05))
        before = {d: len(rows) for d, rows in _parquet_dir(root).items()}
        controller.terminate()
        controller.await_termination()
        out[name] = {"before_termination": before, "after": _parquet_dir(root)}
    return out


@scenario({})
def parquet_partition_and_index_column_raises(inputs, tmp_path):
    """ParquetTarget(partition_cols=['x'], index_cols=['x']) fails at construction; a hashed
    partition of the same column does not."""
    return {
        "same_column": raised(lambda: ParquetTarget(str(tmp_path), partition_cols=["x"], index_cols=["x"])),
        "hashed": raised(lambda: ParquetTarget(str(tmp_path), partition_cols=[("x", 4)], index_cols=["x"])),
    }


@scenario(
    {
        "times": [
            "<datetime 2020-01-01T05:00:00>",
            "<datetime 2020-01-01T07:00:00>",
            "<datetime 2020-01-01T06:00:00>",
        ],
    }
)
def parquet_update_last_written(inputs, tmp_path):
    """ParquetTarget(update_last_written=callback): called at termination with the path (a
    directory without its last '/') and the latest event time written; datetime.min when nothing
    was written."""
    calls = []
    times = decode(inputs["times"])
    for name in ("dir/", "one.parquet"):
        path = str(tmp_path / name) + ("/" if name.endswith("/") else "")
        for events in (times, []):
            kwargs = {"partition_cols": ["k"]} if name.endswith("/") else {}
            target = ParquetTarget(
                path,
                update_last_written=lambda p, t: calls.append((os.path.relpath(p, tmp_path), t)),
                **kwargs,
            )
            controller = build_flow([SyncEmitSource(), target]).run()
            for i, time in enumerate(events):
                controller.emit({"k": i % 2, "v": i}, event_time=time)
            controller.terminate()
            controller.await_termination()
    return calls


# ---- 2. extending storey as its users do


class Doubler(storey.Flow):
    async def _do(self, event):
        if event is storey.dtypes._termination_obj:
            return await self._do_downstream(storey.dtypes._termination_obj)
        event.body = event.body * 2
        await self._do_downstream(event)
        return None


class EmitsTwice(storey.Flow):
    async def _do(self, event):
        if event is storey.dtypes._termination_obj:
            return await self._do_downstream(event)
        await self._do_downstream(event)
        await self._do_downstream(Event(event.body + 100, key=event.key, time=event.time))
        return None


class Counter(storey.Flow):
    """A terminal step: its termination result is what `_do` returns for the termination."""

    def _init(self):
        super()._init()
        self.count = 0

    async def _do(self, event):
        if event is storey.dtypes._termination_obj:
            return self.count
        self.count += 1
        return None


class Recorder(storey.Flow):
    """Records the events that reach it (as objects) and what it received at termination."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    async def _do(self, event):
        if event is storey.dtypes._termination_obj:
            self.seen.append("<termination>")
            return await self._do_downstream(event)
        self.seen.append(event)
        await self._do_downstream(event)
        return None


class Annotate(storey.flow._UnaryFunctionFlow):
    async def _do_internal(self, event, fn_result):
        event.body = {"orig": event.body, "fn": fn_result}
        await self._do_downstream(event)


class CheckWith(storey.flow._UnaryFunctionFlow):
    """Overrides `_do` itself and calls the user function with `_call`."""

    async def _do(self, event):
        if event is storey.dtypes._termination_obj:
            return await self._do_downstream(storey.dtypes._termination_obj)
        element = self._get_event_or_body(event)
        if await self._call(element):
            await self._do_downstream(self._user_fn_output_to_event(event, element))
        return None


@scenario({"bodies": [1, 2, 3]})
def custom_do_steps(inputs, tmp_path):
    """Steps that subclass storey.Flow and override `async def _do(self, event)`, passing events on
    with `_do_downstream` and the termination with `_do_downstream(_termination_obj)`."""
    bodies = inputs["bodies"]
    recorder = Recorder()
    controller = build_flow([SyncEmitSource(), Doubler(), recorder, Complete()]).run()
    completed = [controller.emit(b).await_result() for b in bodies]
    controller.terminate()
    controller.await_termination()
    return {
        "doubled": _run([Doubler(), collect()], bodies),
        "emits_twice": _run([EmitsTwice(), collect()], bodies),
        "terminal_result": _run([Map(lambda x: x), Counter()], bodies),
        "after_map_and_branch": _run([Doubler(), [Counter()], Map(lambda x: x + 1), collect()], bodies),
        "completed": completed,
        "recorded": [x if isinstance(x, str) else [type(x).__name__, x.body] for x in recorder.seen],
        "unary_do_internal": _run([Annotate(lambda x: x * 3), collect()], bodies),
        "unary_do_with_call": _run([CheckWith(lambda x: x > 1), collect()], bodies),
        "unary_paths": _run(
            [Annotate(lambda x: x + 1, input_path="a"), collect()], [{"a": b} for b in bodies]
        ),
    }


class Raising(storey.Flow):
    async def _do(self, event):
        if event is storey.dtypes._termination_obj:
            return await self._do_downstream(event)
        if event.body == 2:
            raise ValueError("custom step failed")
        await self._do_downstream(event)
        return None


class Catcher(storey.Flow):
    async def _do(self, event):
        if event is storey.dtypes._termination_obj:
            return await self._do_downstream(event)
        event.body = {"body": event.body, "origin_state": event.origin_state, "error": repr(event.error)}
        await self._do_downstream(event)
        return None


@scenario({"bodies": [1, 2, 3]})
def custom_step_errors(inputs, tmp_path):
    """A custom step (or a Map) that raises: the flow fails with its error, or its recovery step
    (itself a custom step) receives the event with `origin_state` and `error`, and the flow goes
    on."""
    bodies = inputs["bodies"]
    collected = collect()
    failing = Raising()
    catcher = Catcher()
    catcher.to(collected)
    failing.set_recovery_step(catcher)
    recovered = _run([failing, collected], bodies)

    def fail_on_two(x):
        if x == 2:
            raise KeyError("two")
        return x * 10

    collected = collect()
    catcher = Catcher()
    catcher.to(collected)
    mapping = Map(fail_on_two, name="tens")
    mapping.set_recovery_step(catcher)
    map_recovered = _run([mapping, collected], bodies)
    return {
        "raised": raised(lambda: _run([Raising(), collect()], bodies)),
        "recovered": recovered,
        "map_recovered": map_recovered,
    }


class CountingSource(storey.sources._IterableSource, storey.sources.WithUUID):
    def __init__(self, count, **kwargs):
        storey.sources._IterableSource.__init__(self, **kwargs)
        storey.sources.WithUUID.__init__(self)
        self.count = count

    async def _run_loop(self):
        for i in range(self.count):
            uid = self._get_uuid()
            event = Event({"i": i, "id_counter": uid.split("-")[1]}, key=f"k{i % 2}", time=T0, id=f"e{i}")
            await self._do_downstream(event)
        return await self._do_downstream(storey.dtypes._termination_obj)


@scenario({"count": 5})
def custom_iterable_source(inputs, tmp_path):
    """A source that subclasses storey.sources._IterableSource (and WithUUID) and implements
    `_run_loop`, run with run() and with run_async()."""
    count = inputs["count"]

    def flow():
        return build_flow([CountingSource(count), Map(lambda b: {**b, "twice": b["i"] * 2}), collect()])

    def keyed():
        return build_flow(
            [
                CountingSource(count),
                Reduce([], lambda acc, e: acc + [[e.key, e.id, e.body["i"]]], full_event=True),
            ]
        )

    return {
        "run": flow().run().await_termination(),
        "run_async": asyncio.run(flow().run_async()),
        "events": keyed().run().await_termination(),
    }


@scenario({})
def storey_namespace(inputs, tmp_path):
    """After a plain `import storey`, the submodules users reach through it, and the per-event
    names they import."""
    code = (
        "import storey\n"
        "print([hasattr(storey, m) for m in ('dtypes', 'flow', 'sources')])\n"
        "import storey.dtypes, storey.flow, storey.sources\n"
        "print(storey.dtypes._termination_obj is storey.flow._termination_obj)\n"
        "print([hasattr(storey.sources, n) for n in ('_IterableSource', 'WithUUID')])\n"
        "print([hasattr(storey.flow, n) for n in ('_UnaryFunctionFlow', 'Flow', 'JoinWithV3IOTable')])\n"
        "print(hasattr(storey, 'JoinWithV3IOTable'))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(storey.__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path), env=env, check=True
    )
    return done.stdout.splitlines()


@scenario(
    {"paths": ["/container/dir/table", "container", "//container/a/b/"], "memory": "memory://bucket/a/b"}
)
def storey_utils(inputs, tmp_path):
    """storey.utils: `_split_path` of V3IO paths, `url_to_file_system` of a local path and a URL."""
    from storey.utils import _split_path, url_to_file_system

    local_fs, local_path = url_to_file_system(str(tmp_path / "x.csv"), None)
    memory_fs, memory_path = url_to_file_system(inputs["memory"], None)
    return {
        "split": [list(_split_path(p)) for p in inputs["paths"]],
        "local": [type(local_fs).__name__, os.path.relpath(local_path, tmp_path)],
        "memory": [type(memory_fs).__name__, memory_path],
    }


# ---- 3. what mlrun's graphs rely on


class _MapTimesHundred(MapClass):
    def do(self, element):
        return element * 100


@scenario({"bodies": [{"a": {"b": 1}, "n": 1}, {"a": {"b": 2}, "n": 2}, {"a": {"b": 3}, "n": 3}]})
def input_and_result_paths(inputs, tmp_path):
    """input_path/result_path on the steps that take them: the function receives body['a']['b'];
    its result is written at result_path in the body instead of replacing it."""
    bodies = inputs["bodies"]

    def fresh():
        return decode(bodies)

    routed_high, routed_low = collect(), collect()
    choice = Choice(
        [(routed_high, lambda x: x > 1)],
        default=routed_low,
        input_path="a.b",
        termination_result_fn=lambda high, low: [high, low],
    )
    controller = build_flow([SyncEmitSource(), Complete(input_path="a")]).run()
    completed = [controller.emit(b).await_result() for b in fresh()]
    controller.terminate()
    controller.await_termination()
    return {
        "map": _run([Map(lambda x: x * 10, input_path="a.b", result_path="out.c"), collect()], fresh()),
        "map_input_only": _run([Map(lambda x: x * 10, input_path="a.b"), collect()], fresh()),
        "map_result_only": _run([Map(lambda x: len(x), result_path="size"), collect()], fresh()),
        "filter": _run(
            [Filter(lambda x: x > 1, input_path="a.b", result_path="ignored"), collect()], fresh()
        ),
        "flatmap": _run(
            [
                FlatMap(lambda x: [x, -x], input_path="a.b", result_path="item"),
                Map(lambda b: dict(b)),
                collect(),
            ],
            fresh(),
        ),
        "mapclass": _run([_MapTimesHundred(input_path="n", result_path="r"), collect()], fresh()),
        "extend": _run([Extend(lambda x: {"e": x + 1}, input_path="a.b"), collect()], fresh()),
        "foreach": _run([ForEach(lambda x: x * 7, input_path="n", result_path="seen"), collect()], fresh()),
        "map_with_state": _run(
            [MapWithState(0, lambda x, s: (x + s, s + x), input_path="n", result_path="total"), collect()],
            fresh(),
        ),
        "choice": _run([choice], fresh()),
        "batch": _run([Batch(2, input_path="a"), collect()], fresh()),
        "complete": completed,
        "missing_level": _run([Map(lambda x: x, input_path="zz.b", result_path="p.q"), collect()], fresh()),
        "not_a_dict": raised(lambda: _run([Map(lambda x: x, input_path="a")], [5])),
    }


class _ListLogger:
    """A logger that records what it is asked to log."""

    def __init__(self):
        self.lines = []

    def debug(self, message, *args, **kwargs):
        self.lines.append(["debug", message])

    def info(self, message, *args, **kwargs):
        self.lines.append(["info", message])

    def warn(self, message, *args, **kwargs):
        self.lines.append(["warn", message])

    warning = warn

    def error(self, message, *args, **kwargs):
        self.lines.append(["error", message.split("\n")[0]])


class GraphContext:
    """The context mlrun hands to its graphs' steps: verbose, a logger and push_error."""

    def __init__(self, verbose=True):
        self.verbose = verbose
        self.logger = _ListLogger()
        self.pushed = []

    def push_error(self, event, message, source=None):
        self.pushed.append(
            {"body": event.body, "id": event.id, "message": message.split("\n")[0], "source": source}
        )


@scenario({"bodies": [{"x": 1}, {"x": 0}, {"x": 4}], "ids": ["a", "b", "c"]})
def context_hooks(inputs, tmp_path):
    """A context with verbose=True and a logger: every hand-off logged at debug level as storey
    formats it; with push_error, a failing event is reported there (and its awaitable fails)
    while the flow goes on."""
    context = GraphContext()
    steps = [
        SyncEmitSource(context=context),
        Map(lambda b: {**b, "inv": 1 / b["x"]}, context=context, name="Invert"),
        _Passing(context=context, name="Custom"),
        Complete(context=context),
    ]
    controller = build_flow(steps).run()
    results = []
    for body, id_ in zip(inputs["bodies"], inputs["ids"], strict=True):
        try:
            results.append(controller.emit(Event(dict(body), id=id_, time=T0)).await_result())
        except Exception as ex:
            results.append(type(ex).__name__)
    controller.terminate()
    termination = controller.await_termination()
    return {
        "results": results,
        "termination": termination,
        "logged": context.logger.lines,
        "pushed": context.pushed,
    }


@scenario({"values": [1, 2, 3]})
def verbose_errors_and_run_async(inputs, tmp_path):
    """With a verbose context, the flow's error reaches the caller as 'Flow execution terminated'
    of its type, chained from it; file sources run in the running event loop with run_async()."""
    controller = build_flow([SyncEmitSource(context=GraphContext()), Map(lambda x: 1 / (x - 2))]).run()
    for value in inputs["values"]:
        try:
            controller.emit(value)
        except ZeroDivisionError:
            break
    controller.terminate()
    try:
        controller.await_termination()
        raised = None
    except Exception as ex:
        raised = [type(ex).__name__, str(ex), type(ex.__cause__).__name__, str(ex.__cause__)]
    frame = pd.DataFrame({"a": inputs["values"]})
    flow = build_flow(
        [storey.DataframeSource(frame), Map(lambda b: b["a"]), Reduce(0, lambda acc, x: acc + x)]
    )
    return {"raised": raised, "run_async": asyncio.run(flow.run_async())}


class NuclioEvent:
    """An event object of mlrun's/nuclio's: not a storey Event, but with an id and a body."""

    def __init__(self, body, id, path="/", method="GET", time=None):
        self.body = body
        self.id = id
        self.path = path
        self.method = method
        self.headers = {"h": "v"}
        self.content_type = "application/json"
        self.time = time
        self.trigger = "http"


@scenario({"body": {"inputs": [1, 2]}, "id": "req-1", "path": "/v2/models/m/infer", "method": "POST"})
def foreign_event_objects(inputs, tmp_path):
    """Emitting an object with an id that is not a storey Event: the steps receive it as the
    event (id, path, method kept) and Complete(full_event=True) gives the same object back."""
    out = {}
    for name, steps in (
        ("direct", []),
        ("filter", [Filter(lambda b: True)]),
        ("custom", [_Passing()]),
        ("map", [Map(lambda b: {**b, "n": 1})]),
    ):
        obj = NuclioEvent(decode(inputs["body"]), inputs["id"], inputs["path"], inputs["method"], T0)
        controller = build_flow([SyncEmitSource(), *steps, Complete(full_event=True)]).run()
        result = controller.emit(obj).await_result()
        controller.terminate()
        controller.await_termination()
        out[name] = {
            "same_object": result is obj if name != "map" else None,
            "type": type(result).__name__,
            "fields": [result.id, result.path, result.method, result.body, getattr(result, "trigger", None)],
        }
    event = Event(decode(inputs["body"]), id=inputs["id"], time=T0)
    controller = build_flow([SyncEmitSource(), _Passing(), Complete(full_event=True)]).run()
    out["storey_event"] = controller.emit(event).await_result() is event
    controller.terminate()
    controller.await_termination()
    return out


@scenario(
    {
        "bodies": [{"v": 1, "w": 1.5}, {"v": 2, "w": 2.5}, {"v": 3, "w": 3.5}],
        "keys": [["a", "x"], ["b", "y"], ["c", "z"]],
    }
)
def dataframes_multi_index(inputs, tmp_path):
    """ReduceToDataFrame(index=[...], insert_key_column_as=[...]): list keys expanded into columns
    and a multi-index; ToDataFrame(index=[...])."""
    bodies = inputs["bodies"]
    items = list(zip(bodies, inputs["keys"], strict=True))
    reduced = _run([ReduceToDataFrame(index=["k1", "k2"], insert_key_column_as=["k1", "k2"])], items)
    framed = _run([Batch(3), ToDataFrame(index=["v", "w"]), collect()], bodies)
    return {
        "reduce": {
            "index": [list(i) for i in reduced.index],
            "names": list(reduced.index.names),
            "rows": reduced.to_dict("records"),
        },
        "to_dataframe": [{"index": [list(i) for i in f.index], "names": list(f.index.names)} for f in framed],
    }


@scenario({})
def to_dict_and_to_code(inputs, tmp_path):
    """Flow.to_dict() of steps and custom steps, and to_code() of a flow, as storey writes them."""
    target_path = str(tmp_path / "out")
    steps = [
        SyncEmitSource(key_field="k", name="src"),
        Map(lambda x: x, name="m", input_path="a.b", full_event=False),
        Reduce(0, lambda a, b: a, name="r"),
        Batch(3, 2, "k"),
        ParquetTarget(target_path, columns=["a"], name="p"),
        Doubler(name="d", result_path="x"),
        CSVSource("x.csv", header=True),
        Flatten(name="f"),
        storey.flow.Rename({"a": "b"}),
        storey.flow.ReifyMetadata(["key"], name="reify"),
        Partition(lambda event: True),
        storey.JoinWithTable(Table("t", NoopDriver()), "k", max_in_flight=4),
    ]
    dicts = []
    for step in steps:
        d = step.to_dict()
        d["class_args"] = {
            k: (os.path.relpath(v, tmp_path) if k == "path" else v) for k, v in d["class_args"].items()
        }
        dicts.append(d)
    code = build_flow(
        [SyncEmitSource(), Doubler(name="d"), [Map(lambda x: x, full_event=True)], Reduce(0, lambda a, b: a)]
    ).to_code()
    return {"dicts": dicts, "code": code}


@scenario({"keys": ["k", "q"], "bodies": [{"v": 1}, {"v": 2}, {"v": 3}]})
def tables_and_map_with_state(inputs, tmp_path):
    """Table[key] = {...} and Table[key] on an in-memory table; MapWithState given a v3io:// table
    name found in Context(initial_tables=...), and on events without a key."""
    table = Table("t", NoopDriver())
    table["k"] = {"a": 1}
    table["k"] = {"b": 2}
    named = Table("v3io:///container/states", NoopDriver())
    context = Context(initial_tables={"v3io:///container/states": named})

    def count(body, state):
        state = dict(state)
        state["n"] = state.get("n", 0) + 1
        return {**body, "n": state["n"]}, state

    bodies = inputs["bodies"]
    by_name = _run(
        [MapWithState("v3io:///container/states", count, group_by_key=True, context=context), collect()],
        [(b, "key1") for b in bodies],
    )
    without_key = _run([MapWithState(Table("u", NoopDriver()), count, group_by_key=True), collect()], bodies)
    return {
        "items": [table["k"], table["missing"]],
        "by_name": by_name,
        "state_by_name": named["key1"],
        "without_key": without_key,
    }


class RemoteCall(storey.flow._ConcurrentJobExecution):
    """mlrun-style remote step: a job per event, passing the event on from _handle_completed."""

    async def _process_event(self, event):
        await asyncio.sleep(0.01 * (3 - event.body % 3))
        if event.body == 2:
            raise RuntimeError("remote failed")
        return event.body * 10

    async def _handle_completed(self, event, response):
        event.body = response
        await self._do_downstream(event)


@scenario({"bodies": [0, 1, 2, 3, 4]})
def concurrent_step_failures(inputs, tmp_path):
    """A subclass of storey.flow._ConcurrentJobExecution (as mlrun's remote steps are) whose job
    fails for one event: the context's push_error gets it and the flow goes on, or its recovery
    step does; results come in the events' order."""
    context = GraphContext(verbose=False)
    events = [Event(body, id=f"e{body}") for body in inputs["bodies"]]
    pushed_flow = _run([RemoteCall(context=context, name="remote"), collect()], events)
    collected = collect()
    catcher = Catcher()
    catcher.to(collected)
    step = RemoteCall(name="remote")
    step.set_recovery_step(catcher)
    recovered = _run([step, collected], inputs["bodies"])
    return {"pushed_flow": pushed_flow, "pushed": context.pushed, "recovered": recovered}


# ---- the reference's results and errors


@scenario(
    {
        "files": {
            "hdr": "a,b,c\n1,,x\n,3,\n2,4,y\n",
            "first_empty": "a,b\n,\n2,z\n",
            "none_text": "a,b\n1,None\n2,x\n",
        }
    }
)
def csv_source_empty_values(inputs, tmp_path):
    """CSVSource with empty fields: None in text and bool columns, NaN in number columns, the type
    of a first-row empty column taken from later rows; 'None' stays text."""
    out = {}
    for name, text in inputs["files"].items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        out[name] = (
            build_flow([CSVSource(str(path), header=True, build_dict=True), collect()])
            .run()
            .await_termination()
        )
    path = tmp_path / "lists.csv"
    path.write_text("1,,x\n2,3,\n")
    out["lists"] = build_flow([CSVSource(str(path)), collect()]).run().await_termination()
    path = tmp_path / "strings.csv"
    path.write_text("a,b\n1,\n,3\n")
    out["no_inference"] = (
        build_flow([CSVSource(str(path), header=True, build_dict=True, type_inference=False), collect()])
        .run()
        .await_termination()
    )
    return out


@scenario({"bodies": [[1, 2], [3]]})
def flatten_with_full_event(inputs, tmp_path):
    """Flatten(full_event=True) iterates the body: storey takes full_event as False."""
    return _run([Flatten(full_event=True), collect()], inputs["bodies"])


@scenario({})
def construction_errors(inputs, tmp_path):
    """Errors raised when a flow is built: a source anywhere but first; CSVSource with header=True
    and an int time_field, or int parse_dates."""
    return {
        "source_second": raised(lambda: build_flow([Map(lambda x: x), SyncEmitSource()])),
        "source_via_to": raised(lambda: Map(lambda x: x).to(AsyncEmitSource())),
        "source_in_branch": raised(lambda: build_flow([SyncEmitSource(), [storey.DataframeSource([])]])),
        "csv_header_int_time_field": raised(lambda: CSVSource("x.csv", header=True, time_field=0)),
        "csv_header_int_parse_dates": raised(lambda: CSVSource("x.csv", header=True, parse_dates=[1])),
    }


@scenario({"values": [1, 0, 2]})
def keyed_async_source_errors(inputs, tmp_path):
    """An error downstream of AsyncEmitSource(key_field=...) reaches the awaiting emit() and
    await_termination(), with a plain step and with a custom one."""

    class Failing(storey.Flow):
        async def _do(self, event):
            if event is storey.dtypes._termination_obj:
                return await self._do_downstream(event)
            if event.body["v"] == 0:
                raise ValueError("zero")
            await self._do_downstream(event)
            return None

    async def go(steps):
        controller = build_flow([AsyncEmitSource(key_field="k"), *steps]).run()
        out = []
        for v in inputs["values"]:
            try:
                out.append(await controller.emit({"k": "a", "v": v}))
            except Exception as ex:
                out.append(type(ex).__name__)
        await controller.terminate()
        try:
            await controller.await_termination()
        except Exception as ex:
            out.append(["termination", type(ex).__name__])
        return out

    return {
        "map": asyncio.run(go([Map(lambda b: 1 / b["v"]), Complete()])),
        "custom": asyncio.run(go([Failing(), Complete()])),
        "aggregation": asyncio.run(
            go(
                [
                    storey.AggregateByKey(
                        [storey.FieldAggregator("v", "v", ["sum"], storey.SlidingWindows(["1h"], "10m"))],
                        Table("t", NoopDriver()),
                    ),
                    Failing(),
                    Complete(),
                ]
            )
        ),
    }


# ---- a small serving graph as mlrun builds one


class Preprocess(storey.Flow):
    """mlrun-style step: changes the body of the event object in place."""

    async def _do(self, event):
        if event is storey.dtypes._termination_obj:
            return await self._do_downstream(storey.dtypes._termination_obj)
        event.body["inputs"] = [x * 2 for x in event.body["inputs"]]
        await self._do_downstream(event)
        return None


class Model(storey.Flow):
    """mlrun-style model step: reads the element at input_path, writes outputs at result_path;
    raises on a bad request."""

    async def _do(self, event):
        if event is storey.dtypes._termination_obj:
            return await self._do_downstream(storey.dtypes._termination_obj)
        element = self._get_event_or_body(event)
        if min(element) < 0:
            raise ValueError(f"negative input in {element}")
        await self._do_downstream(
            self._user_fn_output_to_event(event, {"outputs": [x + 0.5 for x in element]})
        )
        return None


class ErrorHandler(storey.Flow):
    """mlrun-style error handler: the recovery step, answering with the error."""

    async def _do(self, event):
        if event is storey.dtypes._termination_obj:
            return await self._do_downstream(storey.dtypes._termination_obj)
        event.body = {"error": str(event.error), "origin_state": event.origin_state}
        await self._do_downstream(event)
        return None


def _scale(outputs):
    if max(outputs) > 100:
        raise ValueError(f"output out of range: {outputs}")
    return [o * 10 for o in outputs]


@scenario(
    {
        "requests": [
            {"id": "r1", "body": {"inputs": [1, 2]}},
            {"id": "r2", "body": {"inputs": [-1, 3]}},
            {"id": "r3", "body": {"inputs": [0]}},
            {"id": "r4", "body": {"inputs": "bad"}},
            {"id": "r5", "body": {"inputs": [60]}},
            {"id": "r6", "body": {"inputs": [5]}},
        ]
    }
)
def serving_graph(inputs, tmp_path):
    """A serving graph as mlrun builds it: event objects of its own emitted, a custom
    preprocessing step, a model step reading input_path and writing result_path, a recovery
    step taking its failures, a Map with paths whose failures go to the context's push_error,
    verbose logging in the context, Complete(full_event=True) answering each request."""
    context = GraphContext()
    source = SyncEmitSource(context=context)
    preprocess = Preprocess(context=context, name="pre")
    model = Model(context=context, name="model", input_path="inputs", result_path="prediction")
    handler = ErrorHandler(context=context, name="catcher")
    scale = Map(
        _scale,
        context=context,
        name="scale",
        input_path="prediction.outputs",
        result_path="scaled",
    )
    complete = Complete(full_event=True, context=context)
    source.to(preprocess).to(model).to(scale).to(complete)
    model.set_recovery_step(handler)
    handler.to(complete)
    controller = source.run()
    answers = []
    for request in inputs["requests"]:
        obj = NuclioEvent(decode(request["body"]), request["id"], "/v2/models/m/infer", "POST", T0)
        try:
            response = controller.emit(obj).await_result()
            answers.append({"same_object": response is obj, "id": response.id, "body": response.body})
        except Exception as ex:
            answers.append({"error": type(ex).__name__})
    controller.terminate()
    controller.await_termination()
    return {"answers": answers, "pushed": context.pushed, "logged": context.logger.lines}


def run_scenario(name, tmp_path):
    """The encoded output of scenario `name`."""
    fn, inputs = SCENARIOS[name]
    return encode(fn(inputs, tmp_path))
