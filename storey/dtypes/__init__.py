"""Public data types: the event, window definitions, aggregators, emit policies and errors."""

from .aggregators import FieldAggregator
from .emit_policy import (
    EmissionType,
    EmitAfterDelay,
    EmitAfterMaxEvent,
    EmitAfterPeriod,
    EmitAfterWindow,
    EmitEveryEvent,
    EmitPolicy,
)
from .event import Event, FlowError, V3ioError, _termination_obj  # noqa: F401 (storey.dtypes._termination_obj)
from .windows import (
    FixedWindow,
    FixedWindows,
    FixedWindowType,
    LateDataHandling,
    SlidingWindow,
    SlidingWindows,
    WindowBase,
    WindowsBase,
)

__all__ = [
    "EmissionType",
    "EmitAfterDelay",
    "EmitAfterMaxEvent",
    "EmitAfterPeriod",
    "EmitAfterWindow",
    "EmitEveryEvent",
    "EmitPolicy",
    "Event",
    "FieldAggregator",
    "FixedWindow",
    "FixedWindowType",
    "FixedWindows",
    "FlowError",
    "LateDataHandling",
    "SlidingWindow",
    "SlidingWindows",
    "V3ioError",
    "WindowBase",
    "WindowsBase",
]
