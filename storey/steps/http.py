"""SendToHttp, and the concurrent-job machinery it runs on.

`_ConcurrentJobExecution` starts one asynchronous job per event (at most `max_in_flight` at a
time, each retried with exponential backoff) and passes the events on in the order they came in,
each as soon as its own job and every earlier one have completed.
"""

import asyncio
import numbers

import aiohttp

from ..core.batch import EventBatch
from ..engine.graph import Flow
from .functions import write_result

__all__ = ["HttpRequest", "HttpResponse", "SendToHttp"]

DEFAULT_MAX_IN_FLIGHT = 8


class HttpRequest:
    """An HTTP request, as the `request_builder` of `SendToHttp` returns it.

    :param method: HTTP method ('GET', 'POST', ...).
    :param url: the URL to send the request to.
    :param body: the request body (str or bytes), or None.
    :param headers: request headers. Optional.
    """

    def __init__(self, method, url, body, headers=None):
        self.method = method
        self.url = url
        self.body = body
        self.headers = headers or {}

    def __repr__(self):
        return f"HttpRequest(method={self.method!r}, url={self.url!r})"


class HttpResponse:
    """An HTTP response, as `SendToHttp` hands it to `join_from_response`.

    :param status: the HTTP status code.
    :param body: the response body, as text.
    """

    def __init__(self, status, body):
        self.status = status
        self.body = body

    def __repr__(self):
        return f"HttpResponse(status={self.status!r})"


def _check_count(step, name, value, default, minimum):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{step}: {name} must be an int, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{step}: {name} may not be less than {minimum} (got {value})")
    return value


class _ConcurrentJobExecution(Flow):
    """Base of steps that run one asynchronous job per event, several at a time.

    Subclasses implement `_process_event(event)` (the job: a coroutine, retried on exception) and
    `_handle_completed(event, result)` (returns the `Event` to pass on, or None to drop it); they
    may override `_lazy_init()` and `_cleanup()` to open and close their connections on the
    flow's event loop.

    :param max_in_flight: maximum number of jobs running (or completed and waiting for earlier
        ones) at a time. Defaults to 8.
    :param retries: how many times a failed job is retried before the error fails the flow.
        Defaults to 0.
    :param backoff_factor: the n-th retry waits `backoff_factor * 2 ** (n - 1)` seconds.
        Defaults to 1.
    """

    _may_suspend = True

    def __init__(self, max_in_flight=None, retries=None, backoff_factor=None, **kwargs):
        super().__init__(**kwargs)
        self._max_in_flight = _check_count(
            self.name, "max_in_flight", max_in_flight, DEFAULT_MAX_IN_FLIGHT, 1
        )
        self._retries = _check_count(self.name, "retries", retries, 0, 0)
        if backoff_factor is None:
            backoff_factor = 1
        if isinstance(backoff_factor, bool) or not isinstance(backoff_factor, numbers.Real):
            raise TypeError(
                f"{self.name}: backoff_factor must be a number, got {type(backoff_factor).__name__}: "
                f"{backoff_factor!r}"
            )
        if backoff_factor < 0:
            raise ValueError(f"{self.name}: backoff_factor may not be negative (got {backoff_factor})")
        self._backoff_factor = backoff_factor
        self._init()

    def _init(self):
        self._jobs = None  # queue of (event, task) in arrival order, then None to stop
        self._slots = None
        self._worker = None
        self._error = None

    async def _lazy_init(self):
        """Opens what the jobs need (on the flow's event loop)."""

    async def _cleanup(self):
        """Closes what `_lazy_init` opened."""

    async def _process_event(self, event):
        raise NotImplementedError

    async def _handle_completed(self, event, result):
        raise NotImplementedError

    async def _run_job(self, event):
        attempt = 0
        while True:
            try:
                return await self._process_event(event)
            except Exception:
                if attempt >= self._retries:
                    raise
            await asyncio.sleep(self._backoff_factor * 2**attempt)
            attempt += 1

    async def _start(self):
        await self._lazy_init()
        self._jobs = asyncio.Queue()
        self._slots = asyncio.Semaphore(self._max_in_flight)
        self._worker = asyncio.get_running_loop().create_task(self._pass_on_completed())

    async def _do(self, batch):
        if self._worker is None:
            await self._start()
        loop = asyncio.get_running_loop()
        for event in batch.events():
            await self._slots.acquire()
            if self._error is not None:
                self._slots.release()
                raise self._error
            self._jobs.put_nowait((event, loop.create_task(self._run_job(event))))

    async def _pass_on_completed(self):
        """Passes on each job's event, in arrival order, once its job has completed."""
        jobs = self._jobs
        while True:
            entry = await jobs.get()
            if entry is None:
                return
            event, task = entry
            try:
                out = await self._handle_completed(event, await task)
                if out is not None:
                    await self._emit(EventBatch.from_events([out]))
            except Exception as ex:
                # a recovery step or the context's push_error may take over a failure of this step
                try:
                    taken = not getattr(ex, "_storey_downstream", False) and await self._hand_over_failure(
                        event, ex
                    )
                except Exception as recovery_error:
                    ex, taken = recovery_error, False
                if taken:
                    continue
                if event._awaitable_result is not None:
                    event._awaitable_result._set_error(ex)
                self._fail(ex)
                return
            finally:
                self._slots.release()

    def _fail(self, ex):
        """Fails the flow, and every event still waiting here."""
        self._error = ex
        ex.add_note(f"raised in step {self.name}")
        while not self._jobs.empty():
            entry = self._jobs.get_nowait()
            if entry is None:
                continue
            event, task = entry
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: it fails nothing more than the flow already failed
            task.cancel()
            if event._awaitable_result is not None:
                event._awaitable_result._set_error(ex)
            self._slots.release()
        self._runtime.fail(ex)

    async def _on_terminate(self):
        worker = self._worker
        if worker is None:
            return None
        if not worker.done():
            self._jobs.put_nowait(None)
        await worker
        await self._cleanup()
        if self._error is not None:
            raise self._error
        return None


class SendToHttp(_ConcurrentJobExecution):
    """Joins each event with data from any HTTP source. Used for event augmentation.

    Requests run concurrently (see `max_in_flight`); events are passed on in the order they came in.

    :param request_builder: function (Event => HttpRequest) that creates the HTTP request for an
        event. It always receives the `Event`.
    :param join_from_response: function ((body, HttpResponse) => body) that joins the event's
        body with the response into the body to pass on; with `full_event=True` it still receives
        the body and returns the `Event` to pass on. Returning None drops the event.
    :param max_in_flight: maximum number of requests in flight at a time. Defaults to 8.
    :param retries: how many times a request that raised (connection error, ...) is retried.
        Defaults to 0. An HTTP error status is a response, not an error.
    :param backoff_factor: the n-th retry waits `backoff_factor * 2 ** (n - 1)` seconds. Default 1.
    :param name: name of this step, as it should appear in logs. Defaults to class name (SendToHttp).
    :param full_event: whether join_from_response returns Event objects (when True), or only the
        payload (when False). Defaults to False.
    """

    def __init__(self, request_builder, join_from_response, **kwargs):
        super().__init__(**kwargs)
        for param, fn in (("request_builder", request_builder), ("join_from_response", join_from_response)):
            if not callable(fn):
                raise TypeError(f"{self.name}: {param} must be callable, got {type(fn).__name__}")
        self._request_builder = request_builder
        self._join_from_response = join_from_response
        self._session = None

    async def _lazy_init(self):
        self._session = aiohttp.ClientSession()

    async def _cleanup(self):
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _process_event(self, event):
        request = self._request_builder(event)
        async with self._session.request(
            request.method, request.url, headers=request.headers, data=request.body
        ) as response:
            return HttpResponse(response.status, await response.text())

    async def _handle_completed(self, event, response):
        # as in the reference, the join always receives the body; with full_event its result is
        # the event to pass on
        body = self._join_from_response(event.body, response)
        if self._full_event:
            return body
        if body is None:
            return None
        if self._result_path:
            body = write_result(event.body, self._result_path, body)
        event.body = body
        return event
