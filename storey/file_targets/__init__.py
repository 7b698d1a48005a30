"""Targets that write files: CSVTarget, ParquetTarget."""

from .parquet_target import ParquetTarget

__all__ = ["ParquetTarget"]
