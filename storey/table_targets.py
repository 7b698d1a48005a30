"""Targets that write to a Table: NoSqlTarget."""

__all__ = []
