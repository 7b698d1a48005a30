"""SendToHttp against a local aiohttp server started by the tests."""

import asyncio
import json
import threading
import time

import aiohttp
import pytest
from aiohttp import web

from storey import AsyncEmitSource, Complete, Event, Reduce, SyncEmitSource, build_flow
from storey.steps import HttpRequest, HttpResponse, Map, SendToHttp
from storey.steps.http import _ConcurrentJobExecution
from tests.support.engine import Capture, make_events, run_steps
from tests.support.step_runs import RUNNERS, run_sync


class Server:
    """An aiohttp server on 127.0.0.1 in a background thread.

    /echo?n=N answers after (5 - N % 5) * 10 ms with JSON of what it got; /status/<code> answers
    with that status; /flaky fails the connection for the first `flaky_failures` requests.
    """

    def __init__(self):
        self.in_flight = 0
        self.max_in_flight = 0
        self.flaky_hits = 0
        self.flaky_failures = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _serve(self, ready):
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_route("*", "/echo", self._echo)
        app.router.add_route("*", "/status/{code}", self._status)
        app.router.add_route("*", "/flaky", self._flaky)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def reset(self):
        self.max_in_flight = 0
        self.flaky_hits = 0

    async def _echo(self, request):
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            n = int(request.query.get("n", "0"))
            await asyncio.sleep((5 - n % 5) * 0.01)
            body = await request.text()
            return web.json_response(
                {"n": n, "method": request.method, "body": body, "header": request.headers.get("X-Test")}
            )
        finally:
            self.in_flight -= 1

    async def _status(self, request):
        return web.Response(status=int(request.match_info["code"]), text="status body")

    async def _flaky(self, request):
        self.flaky_hits += 1
        if self.flaky_hits <= self.flaky_failures:
            request.transport.close()
            await asyncio.sleep(0.01)
        return web.Response(text=f"ok after {self.flaky_hits}")

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def server():
    srv = Server()
    yield srv
    srv.stop()


def _echo_request(server):
    return lambda event: HttpRequest(
        "POST", server.url(f"/echo?n={event.body['n']}"), json.dumps(event.body), {"X-Test": "yes"}
    )


def _join(body, response):
    return {**body, "status": response.status, "response": json.loads(response.body)}


@pytest.mark.parametrize("source, run", RUNNERS)
def test_responses_are_joined_in_the_order_events_came_in(server, source, run):
    server.reset()
    bodies = [{"n": n} for n in range(12)]
    flow = build_flow(
        [source(), SendToHttp(_echo_request(server), _join), Reduce([], lambda acc, b: acc + [b])]
    )
    result = run(flow, bodies)
    assert [b["n"] for b in result] == list(range(12))
    first = result[0]
    assert first["status"] == 200
    assert first["response"] == {"n": 0, "method": "POST", "body": '{"n": 0}', "header": "yes"}
    # later requests answer sooner than earlier ones, and several were in flight at once
    assert server.max_in_flight > 1


def test_max_in_flight_bounds_concurrent_requests(server):
    server.reset()
    step = SendToHttp(_echo_request(server), _join, max_in_flight=2)
    flow = build_flow([SyncEmitSource(buffer_size=16), step, Reduce(0, lambda acc, b: acc + 1)])
    assert run_sync(flow, [{"n": n} for n in range(10)]) == 10
    assert server.max_in_flight == 2


def test_one_request_at_a_time_with_max_in_flight_1(server):
    server.reset()
    step = SendToHttp(_echo_request(server), _join, max_in_flight=1)
    result = run_sync(
        build_flow([SyncEmitSource(), step, Reduce([], lambda a, b: a + [b["n"]])]),
        [{"n": n} for n in range(4)],
    )
    assert result == [0, 1, 2, 3]
    assert server.max_in_flight == 1


def test_request_builder_gets_the_event_and_join_gets_the_body(server):
    seen = []

    def build(event):
        seen.append((type(event).__name__, event.key))
        return HttpRequest("GET", server.url(f"/echo?n={event.body['n']}"), None)

    def join(body, response):
        seen.append((type(body).__name__, type(response).__name__, type(response.body).__name__))
        return body

    flow = build_flow([SyncEmitSource(key_field="k"), SendToHttp(build, join), Reduce(0, lambda a, b: a + 1)])
    assert run_sync(flow, [{"n": 1, "k": "key1"}]) == 1
    assert seen == [("Event", "key1"), ("dict", "HttpResponse", "str")]


def test_full_event_join_gets_the_body_and_returns_the_event(server):
    # as in storey 1.0.6: full_event changes what the join returns, not what it receives
    def join(body, response):
        assert body == {"n": 3}
        return Event(body, key=f"joined-{response.status}")

    step = SendToHttp(_echo_request(server), join, full_event=True)
    capture = Capture()
    flow = build_flow([SyncEmitSource(), step, capture])
    controller = flow.run()
    controller.emit({"n": 3}, key="k", event_time=None)
    controller.terminate()
    controller.await_termination()
    assert [(body, key) for body, key, *_ in capture.seen] == [({"n": 3}, "joined-200")]


def test_an_error_status_is_a_response(server):
    step = SendToHttp(
        lambda e: HttpRequest("GET", server.url("/status/500"), None), lambda b, r: (b, r.status, r.body)
    )
    result = run_sync(build_flow([SyncEmitSource(), step, Reduce([], lambda a, b: a + [b])]), [1])
    assert result == [(1, 500, "status body")]


def test_join_returning_none_drops_the_event(server):
    step = SendToHttp(_echo_request(server), lambda b, r: None if b["n"] % 2 else b)
    result = run_sync(
        build_flow([SyncEmitSource(), step, Reduce([], lambda a, b: a + [b["n"]])]),
        [{"n": n} for n in range(5)],
    )
    assert result == [0, 2, 4]


def test_awaited_emit_gets_the_joined_body(server):
    step = SendToHttp(_echo_request(server), lambda b, r: {**b, "answered": json.loads(r.body)["n"]})
    controller = build_flow([SyncEmitSource(), step, Complete()]).run()
    results = [controller.emit({"n": n}).await_result() for n in range(3)]
    controller.terminate()
    controller.await_termination()
    assert results == [{"n": n, "answered": n} for n in range(3)]


def test_a_failed_request_is_retried(server):
    server.reset()
    server.flaky_failures = 2
    step = SendToHttp(
        lambda e: HttpRequest("GET", server.url("/flaky"), None),
        lambda b, r: r.body,
        retries=3,
        backoff_factor=0,
    )
    result = run_sync(build_flow([SyncEmitSource(), step, Reduce([], lambda a, b: a + [b])]), [1])
    assert result == ["ok after 3"]


def test_a_request_failing_after_its_retries_fails_the_flow(server):
    server.reset()
    server.flaky_failures = 100
    step = SendToHttp(
        lambda e: HttpRequest("POST", server.url("/flaky"), "x"), lambda b, r: b, retries=1, backoff_factor=0
    )
    with pytest.raises(aiohttp.ClientError):
        run_sync(build_flow([SyncEmitSource(), step, Reduce([], lambda a, b: a + [b])]), [1])
    assert server.flaky_hits == 2


class FlakyJob(_ConcurrentJobExecution):
    """A job that raises for its first `failures` attempts, then returns its attempt count."""

    def __init__(self, failures, **kwargs):
        super().__init__(**kwargs)
        self.failures = failures
        self.attempts = 0

    async def _process_event(self, event):
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError(f"attempt {self.attempts}")
        return self.attempts

    async def _handle_completed(self, event, result):
        event.body = (event.body, result)
        return event


def test_retries_wait_with_exponential_backoff(monkeypatch):
    waits = []

    async def fake_sleep(seconds):
        waits.append(seconds)

    monkeypatch.setattr("storey.steps.http.asyncio.sleep", fake_sleep)
    job = FlakyJob(3, retries=3, backoff_factor=0.5)
    (seen,), _ = run_steps([job, Capture()], make_events(["x"]))
    assert [body for body, *_ in seen] == [("x", 4)]
    assert waits == [0.5, 1.0, 2.0]


def test_no_retry_by_default():
    job = FlakyJob(1)
    with pytest.raises(ConnectionError, match="attempt 1"):
        run_steps([job, Capture()], make_events(["x"]))
    assert job.attempts == 1


@pytest.mark.parametrize("where", ["request_builder", "join_from_response"])
def test_an_error_in_a_user_function_fails_the_flow_and_emit_after_it(server, where):
    build = _echo_request(server)
    join = _join
    if where == "request_builder":
        build = lambda e: 1 / 0  # noqa: E731
    else:
        join = lambda b, r: 1 / 0  # noqa: E731
    controller = build_flow([SyncEmitSource(), SendToHttp(build, join), Complete()]).run()
    awaitable = controller.emit({"n": 1})
    with pytest.raises(ZeroDivisionError):
        awaitable.await_result()
    time.sleep(0.05)
    with pytest.raises(ZeroDivisionError):
        controller.emit({"n": 2})
    with pytest.raises(ZeroDivisionError):
        controller.await_termination()


def test_same_output_for_any_batch_split(server):
    events = make_events([{"n": n} for n in range(9)], keys=[f"k{n % 3}" for n in range(9)])

    def steps():
        return [
            Map(lambda b: {**b, "m": 1}),
            SendToHttp(_echo_request(server), _join, max_in_flight=3),
            Capture(),
        ]

    one_at_a_time = run_steps(steps(), events, sizes=[1] * 9)
    assert [body["n"] for body, *_ in one_at_a_time[0][0]] == list(range(9))
    assert run_steps(steps(), events) == one_at_a_time
    assert run_steps(steps(), events, sizes=[4, 1, 3]) == one_at_a_time


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"max_in_flight": 0}, ValueError, "max_in_flight may not be less than 1"),
        ({"max_in_flight": "x"}, TypeError, "max_in_flight must be an int"),
        ({"retries": -1}, ValueError, "retries may not be less than 0"),
        ({"backoff_factor": -1}, ValueError, "backoff_factor may not be negative"),
        ({"backoff_factor": "1"}, TypeError, "backoff_factor must be a number"),
    ],
)
def test_bad_parameters_are_rejected_at_construction(kwargs, error, message):
    with pytest.raises(error, match=f"SendToHttp: {message}"):
        SendToHttp(lambda e: None, lambda b, r: b, **kwargs)


def test_functions_must_be_callable():
    with pytest.raises(TypeError, match="SendToHttp: request_builder must be callable"):
        SendToHttp(None, lambda b, r: b)
    with pytest.raises(TypeError, match="SendToHttp: join_from_response must be callable"):
        SendToHttp(lambda e: None, "join")


def test_request_and_response_hold_their_fields():
    request = HttpRequest("PUT", "http://h/p", "data")
    assert (request.method, request.url, request.body, request.headers) == ("PUT", "http://h/p", "data", {})
    response = HttpResponse(404, "nope")
    assert (response.status, response.body) == (404, "nope")


def test_a_failure_on_the_async_source_leaves_no_task_running(server):
    async def main():
        step = SendToHttp(_echo_request(server), lambda b, r: 1 / 0)
        controller = build_flow([AsyncEmitSource(), step, Complete()]).run()
        with pytest.raises(ZeroDivisionError):
            await controller.emit({"n": 1})
        with pytest.raises(ZeroDivisionError):
            await controller.await_termination()
        await asyncio.sleep(0.01)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert asyncio.run(main()) == []
