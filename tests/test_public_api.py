"""The public API surface: `from storey import *`, every name of `storey.__all__`, and every class,
function and method the API document names, at its module path, with its documented parameters
(in order) and defaults. The document's signatures are vendored below as data."""

import enum
import importlib
import inspect

import pytest

import storey


class Member:
    """A documented default that is an enum member."""

    def __init__(self, enum_path, member):
        self.enum_path = enum_path
        self.member = member

    def matches(self, value):
        return value is getattr(resolve(self.enum_path), self.member)

    def __repr__(self):
        return f"{self.enum_path}.{self.member}"


class InstanceOf:
    """A documented default that is an instance of a class."""

    def __init__(self, class_path):
        self.class_path = class_path

    def matches(self, value):
        return isinstance(value, resolve(self.class_path))

    def __repr__(self):
        return f"{self.class_path}()"


# Constructor signatures (functions for Flatten): a name alone is a parameter without default,
# (name, default) one with, '**kwargs' the extra keyword arguments.
SIGNATURES = {
    "storey.targets.CSVTarget": [
        "path",
        ("columns", None),
        ("header", False),
        ("infer_columns_from_data", None),
        ("max_lines_before_flush", 128),
        ("max_seconds_before_flush", 3),
        "**kwargs",
    ],
    "storey.targets.NoSqlTarget": ["table", ("columns", None), ("infer_columns_from_data", None), "**kwargs"],
    "storey.targets.ParquetTarget": [
        "path",
        ("index_cols", None),
        ("columns", None),
        ("partition_cols", None),
        ("infer_columns_from_data", None),
        ("max_events", None),
        ("flush_after_seconds", None),
        "**kwargs",
    ],
    "storey.targets.StreamTarget": [
        "storage",
        "stream_path",
        ("sharding_func", None),
        ("batch_size", 8),
        ("columns", None),
        ("infer_columns_from_data", None),
        ("shard_count", 1),
        ("retention_period_hours", 24),
        "**kwargs",
    ],
    "storey.targets.TSDBTarget": [
        "path",
        ("time_col", "$time"),
        ("columns", None),
        ("infer_columns_from_data", None),
        ("index_cols", None),
        ("v3io_frames", None),
        ("access_key", None),
        ("rate", ""),
        ("aggr", ""),
        ("aggr_granularity", None),
        ("frames_client", None),
        "**kwargs",
    ],
    "storey.sources.AsyncAwaitableResult": [("on_error", None), ("expected_number_of_results", 1)],
    "storey.sources.AsyncEmitSource": [
        ("buffer_size", None),
        ("key_field", None),
        ("time_field", None),
        ("time_format", None),
        "**kwargs",
    ],
    "storey.sources.AsyncFlowController": [
        "emit_fn",
        "loop_task",
        "await_result",
        ("key_field", None),
        ("time_field", None),
        ("time_format", None),
        ("id_field", None),
    ],
    "storey.sources.AwaitableResult": [("on_error", None), ("expected_number_of_results", 1)],
    "storey.sources.CSVSource": [
        "paths",
        ("header", False),
        ("build_dict", False),
        ("key_field", None),
        ("time_field", None),
        ("timestamp_format", None),
        ("id_field", None),
        ("type_inference", True),
        ("parse_dates", None),
        "**kwargs",
    ],
    "storey.sources.DataframeSource": [
        "dfs",
        ("key_field", None),
        ("time_field", None),
        ("id_field", None),
        "**kwargs",
    ],
    "storey.sources.FlowAwaiter": ["await_termination_fn"],
    "storey.sources.FlowController": [
        "emit_fn",
        "await_termination_fn",
        "return_awaitable_result",
        ("key_field", None),
        ("time_field", None),
        ("time_format", None),
        ("id_field", None),
    ],
    "storey.sources.ParquetSource": [
        "paths",
        ("columns", None),
        ("start_filter", None),
        ("end_filter", None),
        ("filter_column", None),
        "**kwargs",
    ],
    "storey.sources.SyncEmitSource": [
        ("buffer_size", None),
        ("key_field", None),
        ("time_field", None),
        ("time_format", None),
        "**kwargs",
    ],
    "storey.transformations.AggregateByKey": [
        "aggregates",
        "table",
        ("key", None),
        ("emit_policy", InstanceOf("storey.dtypes.EmitEveryEvent")),
        ("augmentation_fn", None),
        ("enrich_with", None),
        ("aliases", None),
        ("use_windows_from_schema", False),
        "**kwargs",
    ],
    "storey.transformations.Assert": ["**kwargs"],
    "storey.transformations.Batch": [
        ("max_events", None),
        ("flush_after_seconds", None),
        ("key", None),
        "**kwargs",
    ],
    "storey.transformations.Choice": ["choice_array", ("default", None), "**kwargs"],
    "storey.transformations.Extend": ["fn", ("long_running", None), "**kwargs"],
    "storey.transformations.Filter": ["fn", ("long_running", None), "**kwargs"],
    "storey.transformations.FlatMap": ["fn", ("long_running", None), "**kwargs"],
    "storey.transformations.Flatten": ["**kwargs"],
    "storey.transformations.ForEach": ["fn", ("long_running", None), "**kwargs"],
    "storey.transformations.JoinWithTable": [
        "table",
        "key_extractor",
        ("attributes", None),
        ("inner_join", False),
        ("join_function", None),
        "**kwargs",
    ],
    "storey.transformations.Map": ["fn", ("long_running", None), "**kwargs"],
    "storey.transformations.MapClass": [("long_running", None), "**kwargs"],
    "storey.transformations.MapWithState": ["initial_state", "fn", ("group_by_key", False), "**kwargs"],
    "storey.transformations.Partition": ["predicate", "**kwargs"],
    "storey.transformations.ReifyMetadata": ["mapping", "**kwargs"],
    "storey.transformations.SampleWindow": [
        "window_size",
        ("emit_period", Member("storey.steps.sample.EmitPeriod", "FIRST")),
        ("emit_before_termination", False),
        ("key", None),
        "**kwargs",
    ],
    "storey.transformations.SendToHttp": ["request_builder", "join_from_response", "**kwargs"],
    "storey.transformations.ToDataFrame": [("index", None), ("columns", None), "**kwargs"],
    "storey.drivers.Driver": [],
    "storey.drivers.NeedsV3ioAccess": [("webapi", None), ("access_key", None)],
    "storey.drivers.NoopDriver": [],
    "storey.drivers.V3ioDriver": [
        ("webapi", None),
        ("access_key", None),
        ("use_parallel_operations", True),
        ("v3io_client_kwargs", None),
    ],
    "storey.dtypes.EmitAfterMaxEvent": [
        "max_events",
        ("timeout_secs", None),
        ("emission_type", Member("storey.dtypes.EmissionType", "All")),
    ],
    "storey.dtypes.EmitAfterPeriod": [
        ("delay_in_seconds", 0),
        ("emission_type", Member("storey.dtypes.EmissionType", "All")),
    ],
    "storey.dtypes.EmitAfterWindow": [
        ("delay_in_seconds", 0),
        ("emission_type", Member("storey.dtypes.EmissionType", "All")),
    ],
    "storey.dtypes.EmitEveryEvent": [("emission_type", Member("storey.dtypes.EmissionType", "All"))],
    "storey.dtypes.Event": [
        "body",
        ("key", None),
        ("time", None),
        ("id", None),
        ("headers", None),
        ("method", None),
        ("path", "/"),
        ("content_type", None),
        ("awaitable_result", None),
    ],
    "storey.dtypes.FieldAggregator": [
        "name",
        "field",
        "aggr",
        "windows",
        ("aggr_filter", None),
        ("max_value", None),
    ],
    "storey.dtypes.FixedWindow": ["window"],
    "storey.dtypes.FixedWindows": ["windows"],
    "storey.dtypes.SlidingWindow": ["window", "period"],
    "storey.dtypes.SlidingWindows": ["windows", ("period", None)],
    "storey.table.Table": [
        "table_path",
        "storage",
        ("partitioned_by_key", True),
        ("flush_interval_secs", 300),
        ("max_updates_in_flight", 8),
    ],
    "storey.aggregations.AggregateByKey": [
        "aggregates",
        "table",
        ("key", None),
        ("emit_policy", InstanceOf("storey.dtypes.EmitEveryEvent")),
        ("augmentation_fn", None),
        ("enrich_with", None),
        ("aliases", None),
        ("use_windows_from_schema", False),
        "**kwargs",
    ],
    "storey.aggregations.QueryByKey": [
        "features",
        "table",
        ("key", None),
        ("augmentation_fn", None),
        ("aliases", None),
        ("fixed_window_type", Member("storey.dtypes.FixedWindowType", "CurrentOpenWindow")),
        "**kwargs",
    ],
}

# Documented methods: (signature without self, whether it is a coroutine function).
METHODS = {
    "storey.sources.SyncEmitSource.run": ([], False),
    "storey.sources.AsyncEmitSource.run": ([], False),
    "storey.sources.FlowController.emit": (
        [
            "element",
            ("key", None),
            ("event_time", None),
            ("return_awaitable_result", None),
            ("expected_number_of_results", None),
        ],
        False,
    ),
    "storey.sources.FlowController.terminate": ([], False),
    "storey.sources.FlowController.await_termination": ([], False),
    "storey.sources.AsyncFlowController.emit": (
        [
            "element",
            ("key", None),
            ("event_time", None),
            ("await_result", None),
            ("expected_number_of_results", None),
        ],
        True,
    ),
    "storey.sources.AsyncFlowController.terminate": ([], True),
    "storey.sources.AsyncFlowController.await_termination": ([], True),
    "storey.sources.AwaitableResult.await_result": ([], False),
    "storey.sources.AsyncAwaitableResult.await_result": ([], True),
    "storey.sources.FlowAwaiter.await_termination": ([], False),
    "storey.drivers.V3ioDriver.close": ([], True),
}

ENUMS = ["storey.dtypes.EmissionType", "storey.dtypes.FixedWindowType", "storey.dtypes.LateDataHandling"]
EXCEPTIONS = ["storey.dtypes.FlowError", "storey.dtypes.V3ioError"]

# Documented public base classes (the document's private ones, such as storey.flow._Batching,
# are implementation details).
BASES = {
    "storey.flow.Flow": [
        "storey.targets.CSVTarget",
        "storey.targets.NoSqlTarget",
        "storey.targets.ParquetTarget",
        "storey.targets.StreamTarget",
        "storey.targets.TSDBTarget",
        "storey.sources.AsyncEmitSource",
        "storey.sources.SyncEmitSource",
        "storey.sources.CSVSource",
        "storey.sources.DataframeSource",
        *(
            f"storey.transformations.{name}"
            for name in [
                "AggregateByKey",
                "Assert",
                "Batch",
                "Choice",
                "Extend",
                "Filter",
                "FlatMap",
                "ForEach",
                "JoinWithTable",
                "Map",
                "MapClass",
                "MapWithState",
                "Partition",
                "ReifyMetadata",
                "SampleWindow",
                "SendToHttp",
                "ToDataFrame",
            ]
        ),
    ],
    "storey.sources.DataframeSource": ["storey.sources.ParquetSource"],
    "storey.aggregations.AggregateByKey": ["storey.aggregations.QueryByKey"],
    "storey.drivers.Driver": ["storey.drivers.NoopDriver", "storey.drivers.V3ioDriver"],
    "storey.drivers.NeedsV3ioAccess": ["storey.drivers.V3ioDriver"],
    "storey.dtypes.EmitPolicy": [
        "storey.dtypes.EmitAfterMaxEvent",
        "storey.dtypes.EmitAfterPeriod",
        "storey.dtypes.EmitAfterWindow",
        "storey.dtypes.EmitEveryEvent",
    ],
}


def resolve(path):
    """The object at a dotted path: the longest importable module, then attributes."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(path)


def _parameters(obj):
    params = list(inspect.signature(obj).parameters.values())
    if params and params[0].name == "self":
        params = params[1:]
    return params


def check_signature(path, documented, obj):
    params = _parameters(obj)
    named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    doc_named = [d for d in documented if d != "**kwargs"]
    names = [d if isinstance(d, str) else d[0] for d in doc_named]
    assert [p.name for p in named[: len(names)]] == names, f"{path}: parameters {named}"
    for doc, param in zip(doc_named, named, strict=False):
        assert param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD), f"{path}: {param.name}"
        if isinstance(doc, str):
            assert param.default is param.empty, f"{path}: {param.name} has a default"
            continue
        expected = doc[1]
        if isinstance(expected, Member | InstanceOf):
            assert expected.matches(param.default), (
                f"{path}: {param.name}={param.default!r}, not {expected!r}"
            )
        else:
            assert type(param.default) is type(expected) and param.default == expected, (
                f"{path}: {param.name}={param.default!r}, documented {expected!r}"
            )
    # parameters beyond the documented ones are optional
    for param in named[len(names) :]:
        assert param.default is not param.empty, f"{path}: undocumented required parameter {param.name}"
    if "**kwargs" in documented:
        assert any(p.kind == p.VAR_KEYWORD for p in params), f"{path}: takes no **kwargs"


def test_star_import_gives_every_public_name():
    namespace = {}
    exec("from storey import *", namespace)
    assert set(storey.__all__) <= set(namespace)
    assert set(storey.__all__) <= set(dir(storey))


@pytest.mark.parametrize("name", storey.__all__)
def test_every_public_name_resolves(name):
    obj = getattr(storey, name)
    assert obj is not None
    module = getattr(obj, "__module__", "")
    assert module.startswith("storey."), f"storey.{name} comes from {module}"


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'NoSuchStep'"):
        storey.NoSuchStep  # noqa: B018


def test_the_documented_names_are_public():
    documented = {path.rsplit(".", 1)[1] for path in SIGNATURES} | {
        p.rsplit(".", 1)[1] for p in ENUMS + EXCEPTIONS
    }
    # helper classes the document names only at their module path
    module_only = {
        "AsyncAwaitableResult",
        "AsyncFlowController",
        "AwaitableResult",
        "FixedWindow",
        "FlowAwaiter",
        "FlowController",
        "NeedsV3ioAccess",
        "SlidingWindow",
    }
    assert documented - module_only <= set(storey.__all__)
    for path in SIGNATURES:
        name = path.rsplit(".", 1)[1]
        if name in storey.__all__:
            assert getattr(storey, name) is resolve(path), path


@pytest.mark.parametrize("path", SIGNATURES)
def test_documented_constructor(path):
    obj = resolve(path)
    assert callable(obj)
    check_signature(path, SIGNATURES[path], obj)


@pytest.mark.parametrize("path", METHODS)
def test_documented_method(path):
    documented, is_async = METHODS[path]
    method = resolve(path)
    check_signature(path, documented, method)
    assert inspect.iscoroutinefunction(method) == is_async


@pytest.mark.parametrize("path", ENUMS)
def test_documented_enums(path):
    assert issubclass(resolve(path), enum.Enum)


@pytest.mark.parametrize("path", EXCEPTIONS)
def test_documented_exceptions(path):
    assert issubclass(resolve(path), Exception)


@pytest.mark.parametrize("base", BASES)
def test_documented_bases(base):
    for path in BASES[base]:
        assert issubclass(resolve(path), resolve(base)), f"{path} is not a {base}"


def test_transformations_are_the_same_objects_as_their_modules():
    assert resolve("storey.transformations.AggregateByKey") is resolve("storey.aggregations.AggregateByKey")
    assert resolve("storey.transformations.QueryByKey") is resolve("storey.aggregations.QueryByKey")
    assert resolve("storey.dtypes.Event") is resolve("storey.Event")


def test_the_signature_check_catches_differences():
    def documented_like(path, storage, stream_path, sharding_func=None, **kwargs):
        pass

    check_signature(
        "ok", ["path", "storage", "stream_path", ("sharding_func", None), "**kwargs"], documented_like
    )
    for wrong in (
        ["path", "storage", ("stream_path", None), "**kwargs"],
        ["path", "stream_path", "storage", "**kwargs"],
        ["path", "storage", "stream_path", ("sharding_func", 0), "**kwargs"],
        ["path", "storage", "stream_path", ("sharding_func", False), "**kwargs"],
        ["path", "storage"],
    ):
        with pytest.raises(AssertionError):
            check_signature("wrong", wrong, documented_like)
