"""Storage drivers for tables: Driver, NoopDriver, V3ioDriver."""

__all__ = ["Driver", "NoopDriver"]


class Driver:
    """Abstract class for database connection"""

    async def _load_static_attributes(self, table_path, keys, attributes=None):
        """Stored attributes of each key in `keys` (a dict key -> dict; keys without any are left out)."""
        return {}

    async def _save_static_attributes(self, table_path, attributes_by_key):
        """Stores attributes (a dict key -> dict of attributes to set)."""

    async def close(self):
        """Closes the connection, if any."""


class NoopDriver(Driver):
    """A driver that stores nothing: tables using it keep their state in memory only."""
