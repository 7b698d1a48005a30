"""Storage drivers for tables: Driver, NoopDriver, V3ioDriver."""

__all__ = []
