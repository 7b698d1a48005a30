"""Sources: the entry points of a flow (each module loaded when one of its sources is first used:
an emitting flow never imports the file readers)."""

from ..core.lazy import lazy_package

__getattr__, __all__ = lazy_package(
    __name__,
    {
        "emit_sources": [
            "AsyncAwaitableResult",
            "AsyncEmitSource",
            "AsyncFlowController",
            "AwaitableResult",
            "FlowAwaiter",
            "FlowController",
            "FlowControllerBase",
            "SyncEmitSource",
        ],
        "file_sources": ["CSVSource", "DataframeSource", "ParquetSource"],
    },
    others={"iterable_source": ["WithUUID", "_IterableSource"]},
)
