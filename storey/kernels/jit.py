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
- `@jit(entry=True)`: a kernel called from Python, loaded from the cache by `QuickLoadingCache`.
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.caching import FunctionCache
from numba.extending import intrinsic

__all__ = ["jit", "prefetch"]


def jit(function=None, *, inline=False, entry=False):
    """`function` compiled as above: `@jit`, `@jit(inline=True)` or `@jit(entry=True)`."""
    options = {"cache": True, "nogil": True, "error_model": "numpy", "_nrt": False}
    if not entry:
        options.update(no_cpython_wrapper=True, no_cfunc_wrapper=True)
    if inline:
        options["inline"] = "always"
    compile_ = njit(**options)
    if entry:
        compile_ = _quick_to_load(compile_)
    return compile_ if function is None else compile_(function)


def _quick_to_load(compile_):
    def decorate(function):
        dispatcher = compile_(function)
        dispatcher._cache = QuickLoadingCache(dispatcher.py_func)
        return dispatcher

    return decorate


class QuickLoadingCache(FunctionCache):
    """Numba's disk cache of a kernel, whose machine code loads without Numba first loading every
    typing and lowering registry it has (0.15-0.25 s of a fresh process; running compiled code
    needs none of them). A miss goes Numba's whole way: loading them, then compiling."""

    def load_overload(self, sig, target_context):
        with self._guard_against_spurious_io_errors():
            found = self._load_overload(sig, target_context)
        return found if found is not None else super().load_overload(sig, target_context)


@intrinsic
def prefetch(typingctx, array, i, j):
    """Asks the CPU to fetch array[i, j] into the cache (a hint; nothing else happens)."""
    sig = types.void(array, i, j)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        ary = context.make_array(array_type)(context, builder, args[0])
        index = [
            context.cast(builder, args[1], signature.args[1], types.intp),
            context.cast(builder, args[2], signature.args[2], types.intp),
        ]
        pointer = cgutils.get_item_pointer(context, builder, array_type, ary, index, wraparound=False)
        i32 = ir.IntType(32)
        byte_pointer = ir.IntType(8).as_pointer()
        pointer = builder.bitcast(pointer, byte_pointer)
        fnty = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # write access, keep in all cache levels, data
        builder.call(fn, [pointer, ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen
