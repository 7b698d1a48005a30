"""The public `storey.redis_driver` namespace, where storey's later releases give `RedisDriver`
(the driver lives in `storey.drivers.redis_driver`; it needs the storey[redis] extra)."""

from .drivers.redis_driver import RedisDriver, WriteConflictError

__all__ = ["RedisDriver", "WriteConflictError"]
