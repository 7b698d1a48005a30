"""Targets: the steps that write events out."""

from .file_targets import *  # noqa: F403
from .file_targets import __all__ as _file_all
from .nosql_target import *  # noqa: F403
from .nosql_target import __all__ as _table_all
from .v3io_targets import *  # noqa: F403
from .v3io_targets import __all__ as _v3io_all

__all__ = _file_all + _table_all + _v3io_all
