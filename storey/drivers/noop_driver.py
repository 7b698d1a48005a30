"""NoopDriver: tables that keep their state in memory only."""

from .driver import Driver

__all__ = ["NoopDriver"]


class NoopDriver(Driver):
    """A driver that stores nothing: tables using it keep their state in memory only."""

    _persists = False
