"""Steps of a flow, one idea per module, each loaded when one of its steps is first used."""

from ..core.lazy import lazy_package

__getattr__, __all__ = lazy_package(
    __name__,
    {
        "assertion": ["Assert"],
        "batching": ["Batch"],
        "dataframes": ["ReduceToDataFrame", "ToDataFrame"],
        "functions": ["Extend", "Filter", "FlatMap", "Flatten", "ForEach", "Map", "MapClass"],
        "http": ["HttpRequest", "HttpResponse", "SendToHttp"],
        "join": ["JoinWithTable", "JoinWithV3IOTable"],
        "metadata": ["ReifyMetadata", "Rename"],
        "recover": ["Recover"],
        "routing": ["Choice", "Partition", "Partitioned"],
        "sample": ["EmitPeriod", "SampleWindow"],
        "state": ["MapWithState"],
    },
)
