"""The public `storey.transformations` namespace: every step that transforms events, loaded on
first use."""

from ..core.lazy import lazy_package

__getattr__, __all__ = lazy_package(
    __name__,
    {
        "steps.assertion": ["Assert"],
        "steps.batching": ["Batch"],
        "steps.dataframes": ["ReduceToDataFrame", "ToDataFrame"],
        "steps.functions": ["Extend", "Filter", "FlatMap", "Flatten", "ForEach", "Map", "MapClass"],
        "steps.http": ["HttpRequest", "HttpResponse", "SendToHttp"],
        "steps.join": ["JoinWithTable", "JoinWithV3IOTable"],
        "steps.metadata": ["ReifyMetadata", "Rename"],
        "steps.recover": ["Recover"],
        "steps.routing": ["Choice", "Partition", "Partitioned"],
        "steps.sample": ["EmitPeriod", "SampleWindow"],
        "steps.state": ["MapWithState"],
        "aggregations.by_key": ["AggregateByKey", "QueryByKey"],
    },
    # the base classes storey 1.0.6 gives here
    others={
        "steps.batching": ["_Batching"],
        "steps.functions": ["_UnaryFunctionFlow"],
        "steps.http": ["_ConcurrentJobExecution"],
    },
    base="storey",
)
