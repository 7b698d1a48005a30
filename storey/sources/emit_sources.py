"""Live entry points into a flow: `SyncEmitSource`/`FlowController` for threads,
`AsyncEmitSource`/`AsyncFlowController` for coroutines, and the awaitable results of `Complete`."""

import asyncio
import threading
from datetime import UTC, datetime

from ..core.batch import event_meta, event_time_of
from ..core.checks import check_positive_int
from ..dtypes.event import Event, parse_event_time
from ..engine.graph import Flow
from ..engine.runtime import GENERATE_ID, TERMINATE, FlowRuntime, copy_error
from ..steps.results import Complete

__all__ = [
    "AsyncAwaitableResult",
    "AsyncEmitSource",
    "AsyncFlowController",
    "AwaitableResult",
    "FlowAwaiter",
    "FlowController",
    "FlowControllerBase",
    "SyncEmitSource",
]


def _check_buffer_size(step, buffer_size):
    if buffer_size is None:
        return 8
    if isinstance(buffer_size, float) and buffer_size.is_integer():
        buffer_size = int(buffer_size)  # as the reference takes it
    return check_positive_int(step, "buffer_size", buffer_size)


class _PendingResult:
    """What an emitter awaits for one event: its result (the list of them when it is expected to
    pass several Complete steps), or the error that failed it. The first outcome wins.

    Subclasses set every slot in their own __init__ (one call less per awaited event), and
    implement `_complete()` (wakes the waiter) and `_report_error(ex)` (calls `_on_error`)."""

    __slots__ = ("_on_error", "_expected", "_results", "_result", "_error", "_completed")

    def _set_result(self, element):
        if self._completed:
            return
        if self._expected == 1:
            self._result = element
        else:
            if self._results is None:
                self._results = []
            self._results.append(element)
            if len(self._results) < self._expected:
                return
            self._result = self._results
        self._complete()

    def _set_error(self, ex):
        if self._completed:
            return
        self._error = ex
        self._complete()
        if self._on_error is not None:
            self._report_error(ex)


class AwaitableResult(_PendingResult):
    """Future result of a computation. Calling await_result() will return with the result once the
    computation is completed."""

    __slots__ = ("_lock",)

    def __init__(self, on_error=None, expected_number_of_results=1):
        self._on_error = on_error
        self._expected = expected_number_of_results or 1
        self._results = None
        self._result = None
        self._error = None
        self._completed = False
        # held until the result is in: await_result() blocks on it
        self._lock = threading.Lock()
        self._lock.acquire()

    def await_result(self):
        """Returns the result, once the computation is completed"""
        if not self._completed:
            self._lock.acquire()
            self._lock.release()
        if self._error is not None:
            raise copy_error(self._error)
        return self._result

    def _complete(self):
        self._completed = True
        self._lock.release()

    def _report_error(self, ex):
        self._on_error()


class AsyncAwaitableResult(_PendingResult):
    """Future result of a computation. Calling await_result() will return with the result once the
    computation is completed. Same as AwaitableResult but for an async context."""

    __slots__ = ("_event",)

    def __init__(self, on_error=None, expected_number_of_results=1):
        self._on_error = on_error
        self._expected = expected_number_of_results or 1
        self._results = None
        self._result = None
        self._error = None
        self._completed = False
        self._event = None  # made by the first await_result() that has to wait

    async def await_result(self):
        """returns the result of the computation, once the computation is complete"""
        if not self._completed:
            if self._event is None:
                self._event = asyncio.Event()
            await self._event.wait()
        if self._error is not None:
            raise copy_error(self._error)
        return self._result

    def _complete(self):
        self._completed = True
        if self._event is not None:
            self._event.set()

    def _report_error(self, ex):
        result = self._on_error(ex)
        if asyncio.iscoroutine(result):
            asyncio.get_event_loop().create_task(result)


# Types of emitted elements that are bodies, told apart at once.
_BODY_TYPES = frozenset({dict, list, str, int, float, bool, bytes, tuple, type(None)})


def is_event_object(element):
    """Whether an emitted element is an event rather than a body: an `Event`, or any object with
    an id and a body."""
    if type(element) in _BODY_TYPES:
        return False
    return isinstance(element, Event) or (hasattr(element, "id") and hasattr(element, "body"))


def convert_time(value, time_format=None):
    """The event time for a time field value: strings are ISO-8601 (or `time_format`), numbers are
    epoch seconds (UTC)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        if time_format:
            return datetime.strptime(value, time_format)
        return datetime.fromisoformat(value)
    if isinstance(value, int | float):
        # bools are ints here, as in the reference: True is one second past the epoch
        return datetime.fromtimestamp(value, UTC)
    raise ValueError(f"Could not parse '{value}' (of type {type(value)}) as a time.")


class FlowControllerBase:
    """Turns what is passed to `emit()` into an event, applying the source's key, time and id fields."""

    def __init__(self, key_field=None, time_field=None, time_format=None, id_field=None):
        self._key_field = key_field
        self._time_field = time_field
        self._time_format = time_format
        self._id_field = id_field
        # no field to extract from bodies: an emitted body goes into the flow as it is
        self._plain = key_field is None and time_field is None and id_field is None

    def _record(self, element, key, event_time, awaitable):
        explicit_key = key is not None
        if is_event_object(element):
            # an Event, or an object of the caller's with an id and a body (mlrun's and nuclio's
            # events): steps receive the object itself, as in storey 1.0.6
            body = element.body
            if key is None:
                key = getattr(element, "key", None)
            time = event_time_of(element) if event_time is None else parse_event_time(event_time)
            id_ = element.id
            meta = event_meta(element)
        else:
            body = element
            time = parse_event_time(event_time)
            id_ = GENERATE_ID
            meta = None
        key_field = self._key_field
        if key_field is not None and not explicit_key:
            if isinstance(key_field, list):
                key = [body[f] for f in key_field]
            else:
                key = body[key_field]
        if self._time_field is not None and event_time is None:
            time = convert_time(body[self._time_field], self._time_format)
            body[self._time_field] = time
        if self._id_field is not None:
            id_ = body[self._id_field]
        return (body, key, time, id_, meta, awaitable)


class FlowController(FlowControllerBase):
    """Used to emit events into the associated flow, terminate the flow, and await the flow's
    termination. To be used from a synchronous context."""

    def __init__(
        self,
        emit_fn,
        await_termination_fn,
        return_awaitable_result,
        key_field=None,
        time_field=None,
        time_format=None,
        id_field=None,
    ):
        super().__init__(key_field, time_field, time_format, id_field)
        self._emit_fn = emit_fn
        self._await_termination_fn = await_termination_fn
        self._return_awaitable_result = return_awaitable_result

    def emit(
        self,
        element,
        key=None,
        event_time=None,
        return_awaitable_result=None,
        expected_number_of_results=None,
    ):
        """Emits an event into the associated flow.

        :param element: the event data, or payload. To set metadata as well, pass an Event object.
        :param key: the event key(s) (optional)
        :param event_time: the event time (default to current time, UTC)
        :param return_awaitable_result: deprecated; an awaitable result object is returned whenever a
            Complete step appears in the flow
        :param expected_number_of_results: number of times the event will have to pass through a
            Complete step to be completed (for graph flows)
        :returns: an AwaitableResult if a Complete appears in the flow, None otherwise
        """
        awaitable = None
        if self._return_awaitable_result:
            awaitable = AwaitableResult(expected_number_of_results=expected_number_of_results or 1)
        if self._plain and not is_event_object(element):
            record = (element, key, parse_event_time(event_time), GENERATE_ID, None, awaitable)
        else:
            record = self._record(element, key, event_time, awaitable)
        self._emit_fn(record, awaitable is not None)
        return awaitable

    def terminate(self):
        """Terminates the associated flow."""
        self._emit_fn(TERMINATE, False)

    def await_termination(self):
        """Awaits the termination of the flow. To be called after terminate. Returns the termination
        result of the flow (if any)."""
        return self._await_termination_fn()


class FlowAwaiter:
    """Future termination result of a flow. Calling await_termination() will wait for the flow to
    terminate and return its termination result."""

    def __init__(self, await_termination_fn):
        self._await_termination_fn = await_termination_fn

    def await_termination(self):
        """Waits for the flow to terminate and returns the result."""
        return self._await_termination_fn()


class _EmitSource(Flow):
    """What both emit sources share: the buffer of emitted events waiting to be processed, and the
    body fields that give an emitted event its key and time."""

    _legal_first_step = True

    def __init__(self, buffer_size, key_field, time_field, time_format, **kwargs):
        super().__init__(**kwargs)
        self._buffer_size = _check_buffer_size(self.name, buffer_size)
        self._key_field = key_field
        self._time_field = time_field
        self._time_format = time_format

    def _new_runtime(self):
        runtime = FlowRuntime(self, self._buffer_size, live=True)
        runtime.results_expected = any(isinstance(step, Complete) for step in runtime.steps)
        return runtime


class SyncEmitSource(_EmitSource):
    """Synchronous entry point into a flow. Produces a FlowController when run, for use from inside a
    synchronous context. See AsyncEmitSource for use from inside an async context.

    :param buffer_size: size of the incoming event buffer: at most this many emitted events wait to
        be processed, and they are processed together. Defaults to 8.
    :param key_field: field (or list of fields) to extract and use as the key. Optional.
    :param time_field: field to extract and use as the time. Optional.
    :param time_format: format of the event time. Needed when a nonstandard string timestamp is used
        (i.e. not ISO or epoch). Optional.
    :param name: name of this step, as it should appear in logs. Defaults to class name
        (SyncEmitSource).
    """

    def __init__(
        self,
        buffer_size: int | None = None,
        key_field: list | str | int | None = None,
        time_field: str | int | None = None,
        time_format: str | None = None,
        **kwargs,
    ):
        super().__init__(buffer_size, key_field, time_field, time_format, **kwargs)
        if buffer_size is not None:
            self._describe(buffer_size=buffer_size)
        if key_field is not None:
            self._describe(key_field=key_field)

    def run(self):
        """Starts the flow"""
        runtime = self._new_runtime()
        runtime.start_thread()
        return FlowController(
            runtime.submit,
            runtime.await_termination,
            runtime.results_expected,
            self._key_field,
            self._time_field,
            self._time_format,
        )


class AsyncFlowController(FlowControllerBase):
    """Used to emit events into the associated flow, terminate the flow, and await the flow's
    termination. To be used from inside an async def."""

    def __init__(
        self,
        emit_fn,
        loop_task,
        await_result,
        key_field=None,
        time_field=None,
        time_format=None,
        id_field=None,
    ):
        super().__init__(key_field, time_field, time_format, id_field)
        self._emit_fn = emit_fn
        self._loop_task = loop_task
        self._await_result = await_result

    async def emit(
        self, element, key=None, event_time=None, await_result=None, expected_number_of_results=None
    ):
        """Emits an event into the associated flow.

        :param element: the event data, or payload. To set metadata as well, pass an Event object.
        :param key: the event key(s) (optional)
        :param event_time: the event time (default to current time, UTC)
        :param await_result: deprecated; a result is awaited whenever a Complete step appears in the flow
        :param expected_number_of_results: number of times the event will have to pass through a
            Complete step to be completed (for graph flows)
        :returns: the result received from the flow if a Complete step appears in it, None otherwise
        """
        awaitable = None
        if self._await_result:
            awaitable = AsyncAwaitableResult(expected_number_of_results=expected_number_of_results or 1)
        record = self._record(element, key, event_time, awaitable)
        await self._emit_fn(record, awaitable is not None)
        if awaitable is not None:
            return await awaitable.await_result()
        return None

    async def terminate(self):
        """Terminates the associated flow."""
        await self._emit_fn(TERMINATE, False)

    async def await_termination(self):
        """Awaits the termination of the flow. To be called after terminate. Returns the termination
        result of the flow (if any)."""
        return await self._loop_task()


def _async_emit_fn(runtime):
    async def emit(record, wants_result):
        if record is TERMINATE:
            runtime.terminate()
        else:
            await runtime.submit_async(record, wants_result)

    return emit


class AsyncEmitSource(_EmitSource):
    """Asynchronous entry point into a flow. Produces an AsyncFlowController when run, for use from
    inside an async def. See SyncEmitSource for use from inside a synchronous context.

    :param buffer_size: size of the incoming event buffer. Defaults to 8.
    :param key_field: field (or list of fields) to extract and use as the key. Optional.
    :param time_field: field to extract and use as the time. Optional.
    :param time_format: format of the event time. Needed when a nonstandard string timestamp is used
        (i.e. not ISO or epoch). Optional.
    :param name: name of this step, as it should appear in logs. Defaults to class name
        (AsyncEmitSource).
    """

    def __init__(
        self,
        buffer_size: int | None = None,
        key_field: list | str | None = None,
        time_field: str | None = None,
        time_format: str | None = None,
        **kwargs,
    ):
        super().__init__(buffer_size, key_field, time_field, time_format, **kwargs)

    def run(self):
        """Starts the flow (call it from inside a running event loop)"""
        runtime = self._new_runtime()
        runtime.start_task()
        return AsyncFlowController(
            _async_emit_fn(runtime),
            runtime.await_termination_async,
            runtime.results_expected,
            self._key_field,
            self._time_field,
            self._time_format,
        )
