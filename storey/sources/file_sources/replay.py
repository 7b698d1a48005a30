"""Running a flow from stored rows: read batches in a worker thread while the flow runs them.

A replay source is the first step of a flow. `run()` starts the flow's event loop in a
background thread, whose main coroutine runs each `EventBatch` through the flow as a worker
thread hands them over, and terminates the flow at the end of the data or at the first error.
The worker reads ahead, up to `READ_AHEAD` batches: reading and converting release the GIL much
of the time, so the two threads use two cores, and neither waits for the other while the time
they take per batch varies (a Parquet row group gives many batches at once). Everything already
handed to the flow is flushed by the termination, also after an error, so nothing written so
far is lost.
"""

import asyncio
import gc
import threading
from concurrent.futures import ThreadPoolExecutor

from ...engine.graph import Flow, drive
from ...engine.runtime import FlowRuntime
from ..emit_sources import FlowAwaiter

# Batches read but not yet run, at most.
READ_AHEAD = 4
_END = object()


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error


class ReplaySource(Flow):
    """Base class of the sources that replay stored rows (DataFrames, Parquet, CSV).

    Subclasses implement `_batches(ids)`, a generator of `EventBatch`es in event order, run in a
    worker thread; `ids` is the flow's id sequence for events without an id field.

    `skipped_rows` counts the rows the last run left out because their key is missing.
    """

    _legal_first_step = True
    skipped_rows = 0

    def run(self):
        """Starts the flow; returns a `FlowAwaiter` whose await_termination() waits for the end of
        the data and returns the flow's termination result (or raises the flow's error)."""
        self.skipped_rows = 0
        runtime = FlowRuntime(self)
        runtime.start_thread(main=lambda: _replay(runtime, self._batches(runtime.ids)))
        return FlowAwaiter(runtime.await_termination)

    async def run_async(self):
        """Runs the flow in the running event loop; returns its termination result (or raises its
        error)."""
        runtime = FlowRuntime(self)
        runtime.bind_loop()
        await _replay(runtime, self._batches(runtime.ids))
        return runtime.await_termination_now()

    def _batches(self, ids):
        raise NotImplementedError

    def _count_skipped(self, rows):
        self.skipped_rows += rows


async def _replay(runtime, batches):
    loop = asyncio.get_running_loop()
    ready = asyncio.Queue()
    room = threading.Semaphore(READ_AHEAD)
    stop = threading.Event()

    def hand_over(item):
        loop.call_soon_threadsafe(ready.put_nowait, item)

    def read_all():
        try:
            for batch in batches:
                room.acquire()
                if stop.is_set():
                    return
                hand_over(batch)
            hand_over(_END)
        except BaseException as ex:
            hand_over(_Failed(ex))
        finally:
            batches.close()

    reader = ThreadPoolExecutor(1, thread_name_prefix=f"storey-{runtime.source.name}-reader")
    reading = loop.run_in_executor(reader, read_all)
    try:
        while True:
            batch = await ready.get()
            room.release()
            if batch is _END:
                break
            if isinstance(batch, _Failed):
                runtime.fail(batch.error)
                break
            if batch.n and not await _run(runtime, batch):
                break
            if runtime.error is not None:
                break
    finally:
        stop.set()
        room.release()
        try:
            await reading
        except BaseException:
            pass
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
                    drive(runtime.source._emit(batch))
                finally:
                    runtime.owner = None
        else:
            await runtime.source._emit(batch)
    except BaseException as ex:
        runtime.fail(ex, batch)
        if not isinstance(ex, Exception):
            raise
        return False
    finally:
        if collecting:
            gc.enable()
    return True
