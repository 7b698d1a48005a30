"""storey: streaming feature pipelines on columnar micro-batches and Numba window kernels.

Every public name is importable from here; modules load on first use, so `import storey` stays
fast and Numba is only imported by the flows that aggregate.
"""

import importlib

__version__ = "1.0.6"

_EXPORTS = {
    "storey.dtypes": [
        "EmissionType",
        "EmitAfterDelay",
        "EmitAfterMaxEvent",
        "EmitAfterPeriod",
        "EmitAfterWindow",
        "EmitEveryEvent",
        "EmitPolicy",
        "Event",
        "FieldAggregator",
        "FixedWindowType",
        "FixedWindows",
        "FlowError",
        "LateDataHandling",
        "SlidingWindows",
        "V3ioError",
    ],
    "storey.flow": ["Complete", "Context", "Flow", "JoinWithV3IOTable", "Reduce", "build_flow"],
    "storey.sources": [
        "AsyncEmitSource",
        "CSVSource",
        "DataframeSource",
        "ParquetSource",
        "SyncEmitSource",
    ],
    "storey.targets": ["CSVTarget", "NoSqlTarget", "ParquetTarget", "StreamTarget", "TSDBTarget"],
    "storey.transformations": [
        "Assert",
        "Batch",
        "Choice",
        "Extend",
        "Filter",
        "FlatMap",
        "Flatten",
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
    ],
    "storey.steps": ["HttpRequest", "HttpResponse", "Recover", "ReduceToDataFrame", "Rename"],
    "storey.aggregations": ["AggregateByKey", "QueryByKey"],
    "storey.table": ["Table"],
    "storey.drivers": ["Driver", "NoopDriver", "SQLDriver", "V3ioDriver"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)

# names whose client library comes with an extra (`pip install storey[redis]`): given on use, and
# left out of `from storey import *`, which works without the extra
_MODULE_OF["RedisDriver"] = "storey.drivers"


# Submodules, attributes of the package as they are in storey 1.0.6 (loaded on first use).
_SUBMODULES = frozenset(
    [
        "aggregations",
        "drivers",
        "dtypes",
        "flow",
        "redis_driver",
        "sources",
        "steps",
        "table",
        "targets",
        "transformations",
        "utils",
    ]
)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'storey' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
