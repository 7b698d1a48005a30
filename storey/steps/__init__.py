"""Steps of a flow, one idea per module."""

from .assertion import *  # noqa: F403
from .assertion import __all__ as _assertion_all
from .batching import *  # noqa: F403
from .batching import __all__ as _batching_all
from .dataframes import *  # noqa: F403
from .dataframes import __all__ as _dataframes_all
from .functions import *  # noqa: F403
from .functions import __all__ as _functions_all
from .http import *  # noqa: F403
from .http import __all__ as _http_all
from .join import *  # noqa: F403
from .join import __all__ as _join_all
from .metadata import *  # noqa: F403
from .metadata import __all__ as _metadata_all
from .recover import *  # noqa: F403
from .recover import __all__ as _recover_all
from .routing import *  # noqa: F403
from .routing import __all__ as _routing_all
from .sample import *  # noqa: F403
from .sample import __all__ as _sample_all
from .state import *  # noqa: F403
from .state import __all__ as _state_all

__all__ = (
    _assertion_all
    + _batching_all
    + _dataframes_all
    + _functions_all
    + _http_all
    + _join_all
    + _metadata_all
    + _recover_all
    + _routing_all
    + _sample_all
    + _state_all
)
