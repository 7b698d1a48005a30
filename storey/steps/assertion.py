"""Assert: checks on the events passing a point of a flow, for tests."""

__all__ = []
