"""The one way the kernels are compiled (pure Python until a decorated function is first called).

Every kernel function is `njit`: cached on disk (see `storey.kernels.cache`), run without the GIL,
and with NumPy's error model (a float division by zero gives inf or NaN, as in the reference,
instead of raising). None counts references to the arrays it is given (Numba's `_nrt=False`): the
kernels never allocate, and the arrays live as long as their Python caller holds them. With
reference counting, every inlined piece that takes an array and branches would leave atomic
increments and decrements on the per-event path (Numba prunes them only in simple control flow),
and the kernels would run up to twice as slow.

- `@jit`: a function compiled on its own, called only from other kernel functions (no wrapper to
  call it from Python);
- `@jit(inline=True)`: a piece of its callers, inlined into them at Numba IR level, never compiled
  on its own (no machine code, no cache entry of its own);
- `@jit(entry=True)`: a kernel called from Python.
"""

from numba import njit

__all__ = ["jit"]


def jit(function=None, *, inline=False, entry=False):
    """`function` compiled as above: `@jit`, `@jit(inline=True)` or `@jit(entry=True)`."""
    options = {"cache": True, "nogil": True, "error_model": "numpy", "_nrt": False}
    if not entry:
        options.update(no_cpython_wrapper=True, no_cfunc_wrapper=True)
    if inline:
        options["inline"] = "always"
    compile_ = njit(**options)
    return compile_ if function is None else compile_(function)
