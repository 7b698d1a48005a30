"""storey: streaming feature pipelines on columnar micro-batches and Numba window kernels."""

from .dtypes import Event, FlowError, V3ioError
from .flow import Complete, Context, Flow, Reduce, build_flow
from .sources import AsyncEmitSource, SyncEmitSource
from .transformations import Extend, Filter, FlatMap, Flatten, ForEach, Map, MapClass

__version__ = "1.0.6"

__all__ = [
    "AsyncEmitSource",
    "Complete",
    "Context",
    "Event",
    "Extend",
    "Filter",
    "FlatMap",
    "Flatten",
    "Flow",
    "FlowError",
    "ForEach",
    "Map",
    "MapClass",
    "Reduce",
    "SyncEmitSource",
    "V3ioError",
    "build_flow",
]
