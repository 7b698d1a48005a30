"""Live emit: SyncEmitSource/FlowController, AsyncEmitSource/AsyncFlowController, awaitable results."""

import asyncio
import datetime as dt
import threading

import pytest

from storey import AsyncEmitSource, Complete, Event, Flow, Map, Reduce, SyncEmitSource, build_flow
from storey.sources import AsyncAwaitableResult, AwaitableResult, FlowAwaiter
from tests.support.conformance import assert_matches, decode, encode, load_case
from tests.support.engine import Capture, encoded


def _sync_capture(source, emits):
    capture = Capture()
    controller = build_flow([source, capture]).run()
    for args in emits:
        controller.emit(*args)
    controller.terminate()
    controller.await_termination()
    return capture


def _async(coroutine_fn):
    return asyncio.run(coroutine_fn())


# ---- conformance cases


def test_conformance_sync_source_key_time_fields():
    case = load_case("sync_source_key_time_fields")
    emits = [
        (decode(e["body"]), e["key_argument"], decode(e["event_time_argument"]))
        for e in case["inputs"]["emits"]
    ]
    capture = _sync_capture(SyncEmitSource(key_field="id", time_field="t"), emits)
    assert_matches(case["expected"]["events"], encoded(capture.seen))


def test_conformance_sync_source_time_format():
    case = load_case("sync_source_time_format")
    source = SyncEmitSource(key_field="k", time_field="when", time_format="%d/%m/%Y %H:%M:%S")
    capture = _sync_capture(source, [(e["body"],) for e in case["inputs"]["events"]])
    assert_matches(case["expected"]["events"], encoded(capture.seen))


def test_conformance_sync_source_epoch_and_key_list():
    case = load_case("sync_source_epoch_and_key_list")
    source = SyncEmitSource(key_field=["region", "shop"], time_field="ts")
    bodies = [dict(e["body"]) for e in case["inputs"]["events"]]
    for i, body in enumerate(bodies):
        # the case's inputs keep 9 significant digits: odd events were at half seconds
        body["ts"] = 1595367600 + 90 * i + (0.5 if i % 2 else 0)
    capture = _sync_capture(source, [(body,) for body in bodies])
    assert_matches(case["expected"]["events"], encoded(capture.seen))


def test_conformance_sync_emit_event_objects():
    case = load_case("sync_emit_event_objects")
    events = []
    for e in case["inputs"]["events"]:
        events.append(Event(decode(e["body"]), key=e["key"], time=decode(e["time"]), id=e["id"]))
    capture = Capture()
    controller = build_flow(
        [SyncEmitSource(key_field="k"), Map(lambda ev: ev, full_event=True), capture]
    ).run()
    for event in events:
        controller.emit(event)
    controller.terminate()
    controller.await_termination()
    assert_matches(case["expected"]["events"], encoded(capture.seen, with_id=True))


def test_conformance_async_source_basic():
    case = load_case("async_source_basic")
    capture = Capture()

    async def main():
        flow = build_flow(
            [
                AsyncEmitSource(key_field="user", time_field="ts"),
                Map(lambda b: {**b, "double": 2 * b["v"]}),
                capture,
                Reduce([], lambda acc, b: acc + [b]),
            ]
        )
        controller = flow.run()
        results = [await controller.emit(dict(e["body"])) for e in case["inputs"]["events"]]
        await controller.terminate()
        return results, await controller.await_termination()

    results, termination = _async(main)
    assert results == case["expected"]["emit_results"]
    assert_matches(case["expected"]["events"], encoded(capture.seen))
    assert_matches(case["expected"]["termination"], encode(termination))


def test_conformance_async_source_complete():
    case = load_case("async_source_complete")

    async def main():
        flow = build_flow(
            [AsyncEmitSource(), Map(lambda x: x * 10), Complete(), Reduce(0, lambda a, x: a + x)]
        )
        controller = flow.run()
        results = [await controller.emit(e["body"]) for e in case["inputs"]["events"]]
        await controller.terminate()
        return results, await controller.await_termination()

    results, termination = _async(main)
    assert results == case["expected"]["emit_results"]
    assert termination == case["expected"]["termination"]


def test_async_source_honours_time_format():
    # reference defect 9: the reference ignores time_format here and fails to parse the time
    case = load_case("async_source_time_format_ignored")
    capture = Capture()

    async def main():
        controller = build_flow([AsyncEmitSource(time_field="t", time_format="%d/%m/%Y"), capture]).run()
        for e in case["inputs"]["events"]:
            await controller.emit(dict(e["body"]))
        await controller.terminate()
        await controller.await_termination()

    _async(main)
    assert [(body, time) for body, _, time, _ in capture.seen] == [
        ({"t": dt.datetime(2020, 2, 15), "v": 1}, dt.datetime(2020, 2, 15))
    ]


# ---- key, time and id


def test_field_index_0_is_a_valid_key_and_time_field():
    # reference defect 13: index 0 was silently ignored
    capture = _sync_capture(SyncEmitSource(key_field=0, time_field=1), [(["k", "2020-01-01T00:00:00"],)])
    assert capture.seen[0][:3] == (["k", dt.datetime(2020, 1, 1)], "k", dt.datetime(2020, 1, 1))
    capture = _sync_capture(
        SyncEmitSource(key_field=1, time_field=0), [(["2020-01-01T00:00:00+00:00", "k"],)]
    )
    assert capture.seen[0][1:3] == ("k", dt.datetime(2020, 1, 1, tzinfo=dt.UTC))


def test_explicit_key_and_time_arguments_win_over_the_fields():
    when = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    capture = _sync_capture(
        SyncEmitSource(key_field="k", time_field="t"),
        [({"k": "field", "t": "2020-01-01T00:00:00"}, "arg", when)],
    )
    assert capture.seen[0][:3] == ({"k": "field", "t": "2020-01-01T00:00:00"}, "arg", when)


def test_default_time_is_now_utc_and_ids_are_unique():
    before = dt.datetime.now(dt.UTC)
    capture = _sync_capture(SyncEmitSource(), [(i,) for i in range(20)])
    after = dt.datetime.now(dt.UTC)
    assert all(before <= time <= after for _, _, time, _ in capture.seen)
    ids = [id_ for *_, id_ in capture.seen]
    assert len(set(ids)) == 20 and all(isinstance(i, str) for i in ids)


def test_epoch_times_become_aware_utc_datetimes():
    capture = _sync_capture(SyncEmitSource(time_field="ts"), [({"ts": 0},), ({"ts": 1.5},)])
    assert [time for _, _, time, _ in capture.seen] == [
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=dt.UTC),
    ]


def test_an_emitted_event_keeps_its_metadata():
    event = Event(
        {"a": 1}, key="k", time="2020-07-21T21:40:00+00:00", id="my-id", headers={"h": 1}, method="POST"
    )
    event.path = "/p"
    capture = Capture(full=True)
    controller = build_flow([SyncEmitSource(), capture]).run()
    controller.emit(event)
    controller.terminate()
    controller.await_termination()
    assert capture.seen == [
        (
            {"a": 1},
            "k",
            dt.datetime(2020, 7, 21, 21, 40, tzinfo=dt.UTC),
            "my-id",
            {"h": 1},
            "POST",
            "/p",
            None,
        )
    ]


@pytest.mark.parametrize("source", [SyncEmitSource, AsyncEmitSource])
def test_an_emitted_event_keeps_its_error(source):
    # as in the reference: an Event handed to emit() goes on with its error set
    plain, routed = Event({"a": 1}), Event({"a": 2}, path="/p")
    plain.error, routed.error = ValueError("x"), KeyError("y")
    flow = build_flow([source(), Reduce([], lambda acc, e: acc + [(e.error, e.path)], full_event=True)])
    if source is SyncEmitSource:
        controller = flow.run()
        controller.emit(plain)
        controller.emit(routed)
        controller.terminate()
        result = controller.await_termination()
    else:

        async def main():
            controller = flow.run()
            await controller.emit(plain)
            await controller.emit(routed)
            await controller.terminate()
            return await controller.await_termination()

        result = _async(main)
    assert result == [(plain.error, "/"), (routed.error, "/p")]


def test_a_bool_time_field_value_is_epoch_seconds_as_in_the_reference():
    capture = _sync_capture(SyncEmitSource(time_field="ts"), [({"ts": True},)])
    assert capture.seen[0][2] == dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC)


def test_a_bad_time_field_value_raises_at_emit():
    controller = build_flow([SyncEmitSource(time_field="t"), Capture()]).run()
    with pytest.raises(ValueError):
        controller.emit({"t": "not a time"})
    with pytest.raises(ValueError, match="Could not parse 'None'"):
        controller.emit({"t": None})
    with pytest.raises(KeyError):
        controller.emit({"x": 1})
    controller.terminate()
    controller.await_termination()


# ---- awaitable results


def test_emit_returns_none_without_a_complete_step():
    controller = build_flow([SyncEmitSource(), Reduce(0, lambda a, x: a + x)]).run()
    assert controller.emit(1) is None
    assert controller.emit(2, return_awaitable_result=True) is None
    controller.terminate()
    assert controller.await_termination() == 3


def test_conformance_complete_await_result():
    case = load_case("complete_await_result")
    from tests.support.conformance import encode_event, input_events

    def run(full_event):
        flow = build_flow(
            [
                SyncEmitSource(),
                Map(lambda b: {**b, "doubled": 2 * b["v"]}),
                Complete(full_event=full_event),
                Map(lambda b: b["v"]),
                Reduce(0, lambda a, v: a + v),
            ]
        )
        controller = flow.run()
        results = []
        for body, key, time in input_events(case):
            results.append(controller.emit(body, key=key, event_time=time).await_result())
        controller.terminate()
        return results, controller.await_termination()

    results, termination = run(False)
    assert_matches(case["expected"]["results"], encode(results))
    assert termination == case["expected"]["termination"]
    expected = case["expected"]["full_event_results"]
    controller = build_flow([SyncEmitSource(), Complete(full_event=True)]).run()
    events = []
    for body, key, time in input_events(case)[: len(expected)]:
        events.append(controller.emit(body, key=key, event_time=time).await_result())
    controller.terminate()
    controller.await_termination()
    assert_matches(expected, [encode_event(e) for e in events])


def test_expected_number_of_results_collects_every_complete():
    flow = build_flow(
        [SyncEmitSource(), [Map(lambda x: x + 1), Complete()], Map(lambda x: x * 10), Complete()]
    )
    controller = flow.run()
    assert controller.emit(1, expected_number_of_results=2).await_result() == [2, 10]
    assert controller.emit(2).await_result() == 3
    controller.terminate()
    controller.await_termination()


def test_a_complete_further_down_completes_an_event_first():
    # as in storey 1.0.6, Complete sets its result after the steps below it have run
    flow = build_flow([SyncEmitSource(), Complete(), Map(lambda x: x + 1), Complete()])
    controller = flow.run()
    assert controller.emit(1, expected_number_of_results=2).await_result() == [2, 1]
    assert controller.emit(7).await_result() == 8
    controller.terminate()
    controller.await_termination()


def test_completes_in_a_batch_are_set_event_by_event():
    from storey.core.batch import EventBatch
    from storey.engine.runtime import FlowRuntime

    def fail_on_3(x):
        if x == 3:
            raise ValueError("bad 3")
        return x + 1

    source = SyncEmitSource()
    build_flow([source, Complete(), Map(fail_on_3), Complete()])
    runtime = FlowRuntime(source, live=True)
    results = [AwaitableResult(expected_number_of_results=2) for _ in range(3)]
    batch = EventBatch(3, bodies=[1, 2, 3], time_values=[None] * 3, awaitables=results)
    runtime._run_inline(batch)
    assert [r.await_result() for r in results[:2]] == [[2, 1], [3, 2]]
    with pytest.raises(ValueError, match="bad 3"):
        results[2].await_result()


def test_an_error_below_a_complete_fails_the_events_result():
    def fail_on_2(x):
        if x == 2:
            raise ValueError("bad 2")
        return x

    controller = build_flow([SyncEmitSource(), Complete(), Map(fail_on_2)]).run()
    assert controller.emit(1).await_result() == 1
    with pytest.raises(ValueError, match="bad 2"):
        controller.emit(2).await_result()
    controller.terminate()
    with pytest.raises(ValueError):
        controller.await_termination()


def test_an_event_that_lost_its_awaitable_result_fails_the_flow_rather_than_hang():
    flow = build_flow([SyncEmitSource(), Map(lambda e: Event(e.body + 1), full_event=True), Complete()])
    controller = flow.run()
    with pytest.raises(AttributeError, match="without the awaitable result"):
        controller.emit(1).await_result()
    controller.terminate()
    with pytest.raises(AttributeError):
        controller.await_termination()


def test_a_new_event_passing_the_awaitable_result_on_completes():
    def replace(event):
        return Event(event.body + 1, awaitable_result=event._awaitable_result)

    controller = build_flow([SyncEmitSource(), Map(replace, full_event=True), Complete()]).run()
    assert controller.emit(1).await_result() == 2
    controller.terminate()
    controller.await_termination()


def test_async_emitted_events_are_processed_once_the_emitter_yields_to_the_loop():
    seen = []

    async def main():
        controller = build_flow([AsyncEmitSource(), Map(lambda x: seen.append(x) or x)]).run()
        for i in range(5):
            await controller.emit(i)
        await asyncio.sleep(0)
        processed = list(seen)
        await controller.terminate()
        await controller.await_termination()
        return processed

    assert _async(main) == [0, 1, 2, 3, 4]


def test_async_expected_number_of_results():
    async def main():
        flow = build_flow([AsyncEmitSource(), [Complete()], Map(lambda x: -x), Complete()])
        controller = flow.run()
        result = await controller.emit(5, expected_number_of_results=2)
        await controller.terminate()
        await controller.await_termination()
        return result

    assert _async(main) == [5, -5]


def test_awaitable_results_on_their_own():
    result = AwaitableResult()
    threading.Timer(0.01, result._set_result, args=("done",)).start()
    assert result.await_result() == "done"
    failed = AwaitableResult()
    failed._set_error(KeyError("x"))
    with pytest.raises(KeyError):
        failed.await_result()

    async def main():
        aresult = AsyncAwaitableResult(expected_number_of_results=2)
        asyncio.get_running_loop().call_later(0.01, aresult._set_result, 1)
        asyncio.get_running_loop().call_later(0.02, aresult._set_result, 2)
        return await aresult.await_result()

    assert _async(main) == [1, 2]
    assert FlowAwaiter(lambda: "result").await_termination() == "result"


# ---- buffering, threads and batches


class BatchSizes(Flow):
    """Records the size of each batch it receives."""

    _takes_batches = True  # its _do takes EventBatches

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sizes = []

    async def _do(self, batch):
        self.sizes.append(batch.n)
        await self._emit(batch)


def test_queued_events_are_drained_into_batches_of_at_most_buffer_size():
    sizes = BatchSizes()
    controller = build_flow([SyncEmitSource(buffer_size=5), sizes, Reduce(0, lambda a, x: a + 1)]).run()
    for i in range(23):
        controller.emit(i)
    controller.terminate()
    assert controller.await_termination() == 23
    assert sum(sizes.sizes) == 23
    assert max(sizes.sizes) <= 5
    # fire-and-forget events travel together, not one by one
    assert len(sizes.sizes) < 23


def test_an_awaited_emit_is_processed_at_once():
    sizes = BatchSizes()
    controller = build_flow([SyncEmitSource(buffer_size=100), sizes, Complete()]).run()
    assert [controller.emit(i).await_result() for i in range(3)] == [0, 1, 2]
    controller.terminate()
    controller.await_termination()
    assert sizes.sizes == [1, 1, 1]


class Gate(Flow):
    """Waits (on the flow's loop) until `opened` is set before passing each batch on."""

    _takes_batches = True  # its _do takes EventBatches

    _may_suspend = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.opened = threading.Event()

    async def _do(self, batch):
        while not self.opened.is_set():
            await asyncio.sleep(0.001)
        await self._emit(batch)


def test_emit_blocks_while_the_buffer_is_full():
    gate = Gate()
    controller = build_flow([SyncEmitSource(buffer_size=2), gate, Reduce(0, lambda a, x: a + 1)]).run()
    emitted = []

    def emitter():
        for i in range(10):
            controller.emit(i)
            emitted.append(i)

    thread = threading.Thread(target=emitter)
    thread.start()
    thread.join(0.3)
    # the gate holds one batch; at most buffer_size more wait in the buffer
    assert thread.is_alive()
    assert len(emitted) <= 4
    gate.opened.set()
    thread.join(10)
    controller.terminate()
    assert controller.await_termination() == 10


@pytest.mark.parametrize("buffer_size", [1, 8, 64])
def test_emit_from_several_threads_keeps_each_threads_order(buffer_size):
    controller = build_flow([SyncEmitSource(buffer_size=buffer_size), Reduce([], lambda a, x: a + [x])]).run()

    def emitter(name):
        for i in range(200):
            controller.emit((name, i))

    threads = [threading.Thread(target=emitter, args=(n,)) for n in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    controller.terminate()
    result = controller.await_termination()
    assert len(result) == 800
    for name in "abcd":
        assert [i for n, i in result if n == name] == list(range(200))


# ---- errors and termination


def _flow_threads():
    return {t for t in threading.enumerate() if t.name.startswith("storey-")}


def test_an_error_stops_the_loop_thread_and_fails_later_emits():
    before = _flow_threads()
    controller = build_flow([SyncEmitSource(), Map(lambda x: 1 / x), Complete()]).run()
    with pytest.raises(ZeroDivisionError) as info:
        controller.emit(0).await_result()
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    with pytest.raises(ZeroDivisionError):
        controller.emit(1)
    with pytest.raises(ZeroDivisionError):
        controller.await_termination()
    assert not _flow_threads() - before


def test_conformance_error_in_map():
    from storey import Filter

    case = load_case("error_in_map")
    bodies = [e["body"] for e in case["inputs"]["events"]]

    def raised(step):
        controller = build_flow([SyncEmitSource(), step, Reduce(0, lambda a, x: a + x)]).run()
        try:
            for body in bodies:
                controller.emit(body)
            controller.terminate()
            controller.await_termination()
        except Exception as ex:
            return type(ex).__name__
        return None

    def bad_map(x):
        if x == 4:
            raise ValueError("bad event")
        return x

    def bad_filter(x):
        if x == 4:
            raise KeyError("bad event")
        return True

    assert raised(Map(bad_map)) == case["expected"]["map_raised"]
    assert raised(Filter(bad_filter)) == case["expected"]["filter_raised"]


def test_emit_after_termination_is_a_clear_error():
    controller = build_flow([SyncEmitSource(), Reduce(0, lambda a, x: a + x)]).run()
    controller.emit(1)
    controller.terminate()
    with pytest.raises(ValueError, match="Cannot emit to a terminated flow"):
        controller.emit(2)
    assert controller.await_termination() == 1
    with pytest.raises(ValueError, match="Cannot emit to a terminated flow"):
        controller.emit(3)
    controller.terminate()  # a second terminate is harmless


def test_the_loop_thread_ends_with_the_flow():
    before = _flow_threads()
    controller = build_flow([SyncEmitSource(), Reduce(0, lambda a, x: a + x)]).run()
    controller.emit(1)
    controller.terminate()
    controller.await_termination()
    assert not _flow_threads() - before


def test_async_errors_fail_emit_and_termination_and_leave_no_task():
    async def main():
        controller = build_flow([AsyncEmitSource(), Map(lambda x: 1 / x), Complete()]).run()
        with pytest.raises(ZeroDivisionError):
            await controller.emit(0)
        with pytest.raises(ZeroDivisionError):
            await controller.emit(1)
        with pytest.raises(ZeroDivisionError):
            await controller.await_termination()
        await asyncio.sleep(0)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert _async(main) == []


def test_async_emit_after_termination_is_a_clear_error():
    async def main():
        controller = build_flow([AsyncEmitSource(), Reduce(0, lambda a, x: a + x)]).run()
        await controller.emit(1)
        await controller.terminate()
        with pytest.raises(ValueError, match="Cannot emit to a terminated flow"):
            await controller.emit(2)
        return await controller.await_termination()

    assert _async(main) == 1


@pytest.mark.parametrize("source", [SyncEmitSource, AsyncEmitSource])
@pytest.mark.parametrize(
    "bad, error", [(0, ValueError), (-3, ValueError), ("x", TypeError), (2.5, TypeError)]
)
def test_bad_buffer_size_is_rejected_at_construction(source, bad, error):
    with pytest.raises(error, match=f"{source.__name__}: buffer_size must be a positive int"):
        source(buffer_size=bad)


def test_a_whole_float_buffer_size_is_accepted_as_in_the_reference():
    capture = _sync_capture(SyncEmitSource(buffer_size=2.0), [(1,), (2,), (3,)])
    assert [body for body, *_ in capture.seen] == [1, 2, 3]


def test_a_termination_flush_error_fails_await_termination():
    class FailsOnFlush(Flow):
        async def _on_terminate(self):
            raise RuntimeError("flush failed")

    controller = build_flow([SyncEmitSource(), FailsOnFlush()]).run()
    controller.emit(1)
    controller.terminate()
    with pytest.raises(RuntimeError, match="flush failed"):
        controller.await_termination()
