"""Targets that write files: CSVTarget, ParquetTarget."""

from .csv_target import CSVTarget
from .parquet_target import ParquetTarget

__all__ = ["CSVTarget", "ParquetTarget"]
