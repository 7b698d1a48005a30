"""Public data types: the event, window definitions, aggregators, emit policies and errors."""

from .event import Event, FlowError, V3ioError

__all__ = ["Event", "FlowError", "V3ioError"]
