"""Table: per-key state (aggregations and static attributes) over a storage driver."""

__all__ = []
