"""SampleWindow: one event out of every window of events."""

__all__ = []
