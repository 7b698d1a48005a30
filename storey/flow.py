"""The public `storey.flow` namespace: the step base class, `build_flow`, `Context`, and the steps
every flow uses (`Complete`, `Reduce`); the engine lives in `storey.engine`.

storey 1.0.6 defines all its steps in `storey.flow`; code written against it imports them from
here, so the other steps are given here too, loaded on first use.
"""

from .core.lazy import lazy_exports
from .engine.context import Context
from .engine.graph import Flow, build_flow
from .steps.results import Complete, Reduce

__all__ = ["Complete", "Context", "Flow", "Reduce", "build_flow"]

_STEPS = {
    "functions": ["Map", "Filter", "FlatMap", "Extend", "MapClass", "_UnaryFunctionFlow"],
    "routing": ["Choice"],
    "join": ["JoinWithTable", "JoinWithV3IOTable"],
    "http": ["SendToHttp", "HttpRequest", "HttpResponse", "_ConcurrentJobExecution"],
    "state": ["MapWithState"],
    "recover": ["Recover"],
    "batching": ["Batch", "_Batching"],
    "metadata": ["ReifyMetadata", "Rename"],
}
# other names storey 1.0.6's storey.flow gives
_OTHERS = {
    "Event": "storey.dtypes.event",
    "FlowError": "storey.dtypes.event",
    "V3ioError": "storey.dtypes.event",
    "Table": "storey.table",
    "_termination_obj": "storey.dtypes.event",
    "_split_path": "storey.utils",
}

__getattr__ = lazy_exports(
    __name__,
    {**{name: f"storey.steps.{module}" for module, names in _STEPS.items() for name in names}, **_OTHERS},
)
