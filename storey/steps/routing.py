"""Steps that route events between branches: Choice, Partition."""

__all__ = []
