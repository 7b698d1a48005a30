"""Window aggregation steps: AggregateByKey, QueryByKey."""

__all__ = []
