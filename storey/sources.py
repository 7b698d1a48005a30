"""Sources: the entry points of a flow."""

from .emit_sources import (
    AsyncAwaitableResult,
    AsyncEmitSource,
    AsyncFlowController,
    AwaitableResult,
    FlowAwaiter,
    FlowController,
    FlowControllerBase,
    SyncEmitSource,
)

__all__ = [
    "AsyncAwaitableResult",
    "AsyncEmitSource",
    "AsyncFlowController",
    "AwaitableResult",
    "FlowAwaiter",
    "FlowController",
    "FlowControllerBase",
    "SyncEmitSource",
]
