"""Targets that write files: CSVTarget, ParquetTarget."""

__all__ = []
