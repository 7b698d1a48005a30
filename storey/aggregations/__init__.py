"""Window aggregation steps: AggregateByKey, QueryByKey, and what only they use (the values and
keys they take from a batch, the features they add to it)."""

from .by_key import AggregateByKey, QueryByKey

__all__ = ["AggregateByKey", "QueryByKey"]
