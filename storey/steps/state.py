"""MapWithState: a user function with state, global or per key."""

__all__ = []
