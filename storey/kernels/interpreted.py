"""The kernels run by the Python interpreter instead of Numba: the same source files, loaded a
second time with a `jit` that compiles nothing.

They compute exactly what the compiled kernels compute (the tests compare them bit for bit), at
about 100 µs per event instead of about one, and need no Numba: a live flow's first events use
them while the compiled kernels load (importing Numba and loading its cache take about half a
second, compiling into an empty cache a minute), and the tests and state conversions read them.
"""

import importlib
import os
import sys
import threading
import types

__all__ = ["load"]

# the package the second copies of the kernels' modules live in
_PACKAGE = f"{__name__}.modules"
_LOCK = threading.Lock()


def _jit(function=None, *, inline=False, entry=False):
    """`storey.kernels.jit.jit` compiling nothing: the function itself."""
    return (lambda f: f) if function is None else function


def _prefetch(array, i, j):
    """`storey.kernels.jit.prefetch`: a hint to the CPU, nothing to do here."""


def load():
    """The modules `sliding` and `fixed` of the kernels, their functions plain Python functions
    calling each other."""
    with _LOCK:
        if _PACKAGE not in sys.modules:
            jit = types.ModuleType(f"{_PACKAGE}.jit")
            jit.jit = _jit
            jit.prefetch = _prefetch
            package = types.ModuleType(_PACKAGE)
            package.__path__ = [os.path.dirname(os.path.abspath(__file__))]
            sys.modules[jit.__name__] = jit
            sys.modules[_PACKAGE] = package
        return importlib.import_module(f"{_PACKAGE}.sliding"), importlib.import_module(f"{_PACKAGE}.fixed")
