"""The public `storey.transformations` namespace: every step that transforms events."""

from ..aggregations import *  # noqa: F403
from ..aggregations import __all__ as _aggregations_all
from ..steps import *  # noqa: F403
from ..steps import __all__ as _steps_all

__all__ = _steps_all + _aggregations_all
