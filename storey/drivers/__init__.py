"""Storage drivers for tables: Driver, NoopDriver, V3ioDriver, one module each.

A driver loads and saves the state a `Table` keeps per key, always for a whole batch of keys at
once (one call per batch, never one per event). Keys reach a driver in the table's hashable form
(a list key `['a', 1]` is the string `'a.1'`).
"""

from ..core.lazy import lazy_exports
from .driver import Driver
from .noop_driver import NoopDriver
from .v3io_driver import NeedsV3ioAccess, V3ioDriver

__all__ = ["Driver", "NeedsV3ioAccess", "NoopDriver", "SQLDriver", "V3ioDriver"]

# drivers whose client library loads only when they are used
__getattr__ = lazy_exports(__name__, {"SQLDriver": "storey.drivers.sql_driver"})
