"""The public `storey.transformations` namespace: every step that transforms events."""

from ..aggregations import *  # noqa: F403
from ..aggregations import __all__ as _aggregations_all
from ..steps import *  # noqa: F403
from ..steps import __all__ as _steps_all
from ..steps.batching import _Batching  # noqa: F401 (the base classes storey 1.0.6 gives here)
from ..steps.functions import _UnaryFunctionFlow  # noqa: F401
from ..steps.http import _ConcurrentJobExecution  # noqa: F401

__all__ = _steps_all + _aggregations_all
