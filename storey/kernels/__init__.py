"""Numba kernels of the window aggregations: plain loops, arrays in and arrays out.

Nothing here knows about events, keys or flows. `registry` (pure Python) lists the aggregations;
`sliding` and `fixed` hold the kernel of each kind of window (`sliding_kernel`, `fixed_kernel`),
loaded on first use by `kernels()` so that importing storey never imports Numba; a flow compiles
only the kind it uses. Every function is compiled by `storey.kernels.jit.jit`: once for the one
argument signature the steps use (the same for every flow), and cached on disk. `interpreted` runs
the same sources without Numba.
"""

import threading
import types

import numpy as np

__all__ = ["kernels", "load_in_background", "loading"]

_LOADED = {}
# one lock for each of kernels(True) and kernels(False): the interpreted kernels load while the
# compiled ones do
_LOCKS = {True: threading.Lock(), False: threading.Lock()}
# the thread load_in_background started for each kind of kernel (once per process)
_BACKGROUND = {}
# `values`/`valid` of a read, which has none
_NO_VALUES = np.zeros((1, 0))
_NO_VALID = np.zeros((1, 0), dtype=np.uint8)
_NO_EMITTED = np.zeros(0, dtype=np.uint8)


def kernels(compiled=True):
    """The kernels, compiled (Numba) or interpreted (`storey.kernels.interpreted`): a namespace with

    - `sliding_update` / `fixed_update(cfg, max_values, times, slots, values, valid, emitted,
      state, istate, out, flags, part, parts)`: aggregate a batch and write every event's
      features (`emitted`: uint8, whether the step emits the event at once);
    - `sliding_read` / `fixed_read(cfg, max_values, times, slots, mode, state, istate, out,
      flags)`: write the features the keys have at the events' times;
    - `sliding` and `fixed`, the compiled kernels they call (see `storey.kernels.sliding`).
    """
    found = _LOADED.get(compiled)
    if found is None:
        with _LOCKS[compiled]:
            found = _LOADED.get(compiled) or _load(compiled)
    return found


def _load(compiled):
    if compiled:
        from . import cache

        cache.refresh()
        from .fixed import fixed_kernel as fixed
        from .sliding import sliding_kernel as sliding
    else:
        from . import interpreted

        sliding_module, fixed_module = interpreted.load()
        sliding, fixed = sliding_module.sliding_kernel, fixed_module.fixed_kernel
    found = types.SimpleNamespace(
        sliding=sliding,
        fixed=fixed,
        sliding_update=_updating(sliding),
        fixed_update=_updating(fixed),
        sliding_read=_reading(sliding),
        fixed_read=_reading(fixed),
    )
    _LOADED[compiled] = found
    return found


def _updating(kernel):
    def update(cfg, max_values, times, slots, values, valid, emitted, state, istate, out, flags, part, parts):
        kernel(
            cfg,
            max_values,
            times,
            slots,
            values,
            valid,
            emitted,
            1,
            0,
            state,
            istate,
            out,
            flags,
            part,
            parts,
        )

    return update


def _reading(kernel):
    def read(cfg, max_values, times, slots, mode, state, istate, out, flags):
        kernel(
            cfg,
            max_values,
            times,
            slots,
            _NO_VALUES,
            _NO_VALID,
            _NO_EMITTED,
            0,
            mode,
            state,
            istate,
            out,
            flags,
            0,
            1,
        )

    return read


def load_in_background(sliding=True, fixed=True):
    """Loads the compiled kernels a flow uses (from Numba's disk cache, compiling them if it holds
    none) in a thread of their own, so that the flow's first batch waits less for them: a file
    source reads meanwhile, a service prepares. A kernel called meanwhile waits for it (Numba's
    lock), so nothing is loaded twice."""
    wanted = [
        kind for kind, used in (("sliding", sliding), ("fixed", fixed)) if used and kind not in _BACKGROUND
    ]
    if wanted:
        thread = threading.Thread(target=_load_kinds, args=(wanted,), name="storey-kernels", daemon=True)
        _BACKGROUND.update(dict.fromkeys(wanted, thread))
        thread.start()


def loading(kind, wait=0.0):
    """Whether load_in_background is still loading the compiled kernel of `kind` ("sliding" or
    "fixed"), after waiting at most `wait` seconds for it to finish. The wait also lets the loading
    thread run: a flow whose threads hand events to each other all the time would otherwise keep
    it from the GIL for seconds."""
    thread = _BACKGROUND.get(kind)
    if thread is None:
        return False
    if wait:
        thread.join(wait)
    return thread.is_alive()


def _load_kinds(kinds):
    found = kernels()
    none_u = np.zeros((1, 0), dtype=np.uint8)
    no_events = np.zeros(0, dtype=np.int64)
    for kind in kinds:
        # no events: the kernel returns at once, once loaded for the one signature it has
        getattr(found, f"{kind}_update")(
            np.zeros(1, dtype=np.int64),
            np.zeros(0),
            no_events,
            no_events,
            np.zeros((1, 0)),
            none_u,
            _NO_EMITTED,
            np.zeros((0, 1)),
            np.zeros((0, 1), dtype=np.int64),
            np.zeros((1, 0)),
            none_u,
            0,
            1,
        )
