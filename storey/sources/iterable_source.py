"""Sources written as storey 1.0.6's are: a subclass of `_IterableSource` implements
`async def _run_loop(self)`, which passes each `Event` on with `await self._do_downstream(event)`
and ends with `return await self._do_downstream(_termination_obj)`; `WithUUID` gives it event ids.
"""

import uuid

from ..core.batch import EventBatch
from ..dtypes.event import _termination_obj
from ..engine.graph import Flow
from ..engine.runtime import FlowRuntime
from .emit_sources import FlowAwaiter

__all__ = []


class WithUUID:
    """Gives ids `<uuid hex>-<4-digit counter>`, a new uuid every 1024 ids, as storey's sources do."""

    def __init__(self):
        self._current_uuid_base = None
        self._current_uuid_count = 0

    def _get_uuid(self):
        if not self._current_uuid_base or self._current_uuid_count == 1024:
            self._current_uuid_base = uuid.uuid4().hex
            self._current_uuid_count = 0
        result = f"{self._current_uuid_base}-{self._current_uuid_count:04}"
        self._current_uuid_count += 1
        return result


class _IterableSource(Flow):
    """Base class of sources that produce their events in a coroutine, `_run_loop()`.

    `run()` runs the loop in a thread of its own and returns a `FlowAwaiter`; `run_async()` runs it
    in the running event loop and returns the flow's termination result.
    """

    _legal_first_step = True

    async def _run_loop(self):
        raise NotImplementedError(f"{type(self).__name__} must implement async def _run_loop(self)")

    def run(self):
        """Starts the flow; returns a `FlowAwaiter` whose await_termination() returns the flow's
        termination result (or raises its error)."""
        runtime = FlowRuntime(self)
        runtime.start_thread(main=lambda: self._run(runtime))
        return FlowAwaiter(runtime.await_termination)

    async def run_async(self):
        """Runs the flow in the running event loop; returns its termination result."""
        runtime = FlowRuntime(self)
        runtime.bind_loop()
        await self._run(runtime)
        return runtime.await_termination_now()

    async def _run(self, runtime):
        try:
            result = await self._run_loop()
            if runtime.error is None:
                runtime.result = result
        except BaseException as ex:
            runtime.fail(ex)
            if not isinstance(ex, Exception):
                raise
        finally:
            await runtime.shutdown()

    async def _do_downstream(self, event):
        if event is _termination_obj:
            return await self._runtime.terminate_graph()
        if self._outlets:
            await self._emit(EventBatch.from_events([event]))
        return None
