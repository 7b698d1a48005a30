"""Targets: the steps that write events out (each module loaded when one of its targets is first
used)."""

from ..core.lazy import lazy_package

__getattr__, __all__ = lazy_package(
    __name__,
    {
        "file_targets": ["CSVTarget", "ParquetTarget"],
        "nosql_target": ["NoSqlTarget"],
        "v3io_targets": ["StreamTarget", "TSDBTarget"],
    },
)
