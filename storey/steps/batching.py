"""Steps that group events into lists: _Batching, Batch."""

__all__ = []
