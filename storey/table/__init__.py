"""Tables: per-key state (static attributes and window-aggregation state) in front of a storage
driver; `key_cache` holds `Table`, `aggregation_state` the dense window arrays it keeps per key."""

from .key_cache import Table

__all__ = ["Table"]
