"""Running a flow from stored rows: read a batch in a worker thread while the flow runs the last.

A replay source is the first step of a flow. `run()` starts the flow's event loop in a
background thread, whose main coroutine asks a worker thread for the next `EventBatch` (reading
and converting release the GIL much of the time, so reading batch i+1 overlaps running batch
i), runs each batch through the flow, and terminates the flow at the end of the data or at the
first error. Everything already handed to the flow is flushed by the termination, also after an
error, so nothing written so far is lost.
"""

import asyncio
import gc
import threading
from concurrent.futures import ThreadPoolExecutor

from ..emit_sources import FlowAwaiter
from ..flow import Flow, drive
from ..runtime import FlowRuntime

_END = object()


def _next(batches):
    return next(batches, _END)


class ReplaySource(Flow):
    """Base class of the sources that replay stored rows (DataFrames, Parquet, CSV).

    Subclasses implement `_batches(ids)`, a generator of `EventBatch`es in event order, run in a
    worker thread; `ids` is the flow's id sequence for events without an id field.
    """

    _legal_first_step = True

    def run(self):
        """Starts the flow; returns a `FlowAwaiter` whose await_termination() waits for the end of
        the data and returns the flow's termination result (or raises the flow's error)."""
        runtime = FlowRuntime(self)
        runtime.start_thread(main=lambda: _replay(runtime, self._batches(runtime.ids)))
        return FlowAwaiter(runtime.await_termination)

    def _batches(self, ids):
        raise NotImplementedError


async def _replay(runtime, batches):
    loop = asyncio.get_running_loop()
    reader = ThreadPoolExecutor(1, thread_name_prefix=f"storey-{runtime.source.name}-reader")
    pending = None
    try:
        pending = loop.run_in_executor(reader, _next, batches)
        while True:
            try:
                batch = await pending
            except BaseException as ex:
                pending = None
                runtime.fail(ex)
                break
            pending = None
            if batch is _END:
                break
            pending = loop.run_in_executor(reader, _next, batches)
            if batch.n and not await _run(runtime, batch):
                break
            if runtime.error is not None:
                break
    finally:
        if pending is not None:
            try:
                await pending
            except BaseException:
                pass
        await loop.run_in_executor(reader, batches.close)
        reader.shutdown(wait=False)
        await runtime.shutdown()


async def _run(runtime, batch):
    """Runs one batch through the flow; False when it failed the flow.

    Python's cyclic garbage collector is paused while the batch runs: a batch allocates many
    objects that stay alive (row dicts, buffered values), and collections that would walk all of
    them again and again cost more than the batch itself. It runs between batches."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        if runtime.inline:
            with runtime.lock:
                runtime.owner = threading.get_ident()
                try:
                    drive(runtime.run_batch(batch))
                finally:
                    runtime.owner = None
        else:
            await runtime.run_batch(batch)
    except BaseException as ex:
        runtime.fail(ex, batch)
        if not isinstance(ex, Exception):
            raise
        return False
    finally:
        if collecting:
            gc.enable()
    return True
