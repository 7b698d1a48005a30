"""Numba kernels of the window aggregations: plain loops, arrays in and arrays out.

Nothing here knows about events, keys or flows. `registry` (pure Python) lists the aggregations;
`sliding` and `fixed` hold the kernels, loaded on first use by `kernels()` so that importing storey
never imports Numba. Every kernel is `njit(cache=True)`: compiled once per dtype signature (the
same for every flow) and cached on disk.
"""

import types

__all__ = ["kernels"]

_LOADED = {}


def _python_twins(module):
    """The module's jitted functions (and the bucket helpers they call) as plain Python functions
    calling each other, not the compiled versions: the pure-Python twin the tests compare the
    compiled kernels with."""
    from . import buckets

    namespace = {**vars(buckets), **vars(module), **buckets.PYTHON_TWINS}
    for name, value in list(namespace.items()):
        py_func = getattr(value, "py_func", None)
        if py_func is not None:
            namespace[name] = types.FunctionType(
                py_func.__code__, namespace, name, py_func.__defaults__, py_func.__closure__
            )
    return namespace


def kernels(compiled=True):
    """The kernels, compiled (Numba) or as their pure-Python twins: a namespace with
    `sliding_update`, `sliding_read`, `fixed_update` and `fixed_read`."""
    found = _LOADED.get(compiled)
    if found is None:
        from . import fixed, sliding

        names = ("sliding_update", "sliding_read", "fixed_update", "fixed_read")
        if compiled:
            spaces = [vars(sliding), vars(fixed)]
        else:
            spaces = [_python_twins(sliding), _python_twins(fixed)]
        found = types.SimpleNamespace(
            **{name: next(space[name] for space in spaces if name in space) for name in names}
        )
        _LOADED[compiled] = found
    return found
