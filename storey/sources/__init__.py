"""Sources: the entry points of a flow."""

from .emit_sources import *  # noqa: F403
from .emit_sources import __all__ as _emit_all
from .file_sources import *  # noqa: F403
from .file_sources import __all__ as _file_all
from .iterable_source import WithUUID, _IterableSource  # noqa: F401 (storey.sources._IterableSource)

__all__ = _emit_all + _file_all
