"""The per-row function steps: Map, Filter, FlatMap, Flatten, Extend, ForEach, MapClass."""

import asyncio
import datetime as dt
import threading

import pytest

from storey import (
    AsyncEmitSource,
    Event,
    Extend,
    Filter,
    FlatMap,
    Flatten,
    ForEach,
    Map,
    MapClass,
    Reduce,
    SyncEmitSource,
    build_flow,
)
from tests.support.conformance import assert_matches, input_events, load_case
from tests.support.engine import Capture, emit_all, encoded, make_events, run_steps


def _run_case(case, steps, capture):
    controller = build_flow([SyncEmitSource(), *steps, capture]).run()
    emit_all(controller, input_events(case))
    controller.terminate()
    return controller.await_termination()


def test_conformance_map_filter_flatmap_extend():
    case = load_case("map_filter_flatmap_extend")
    capture = Capture()
    steps = [
        Map(lambda b: {**b, "sq": b["v"] * b["v"]}),
        Filter(lambda b: b["v"] % 2 == 0),
        FlatMap(lambda b: [b, {**b, "copy": True}] if b["v"] > 10 else [b]),
        Extend(lambda b: {"tag_upper": b["tag"].upper(), "v": b["v"] + 1000}),
    ]
    _run_case(case, steps, capture)
    assert_matches(case["expected"]["events"], encoded(capture.seen))


def test_conformance_flatten_foreach():
    case = load_case("flatten_foreach")
    seen = []
    capture = Capture()

    def remember(x):
        seen.append(x)
        return "ignored"

    _run_case(case, [Map(lambda b: [b["i"]] * (b["i"] % 3)), Flatten(), ForEach(remember)], capture)
    assert_matches(case["expected"]["events"], encoded(capture.seen))
    assert_matches(case["expected"]["seen_by_foreach"], seen)


class _Counting(MapClass):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.counter = 0

    def do(self, body):
        self.counter += 1
        if body["v"] < 0:
            self.filter()
            return None
        return {"v": body["v"], "seen": self.counter}


def test_conformance_mapclass_filter():
    case = load_case("mapclass_filter")
    capture = Capture()
    _run_case(case, [_Counting()], capture)
    assert_matches(case["expected"]["events"], encoded(capture.seen))


def test_conformance_map_full_event_metadata():
    case = load_case("map_full_event_metadata")
    capture = Capture()

    def f(event):
        event.key = "drop" if event.body["v"] < 0 else f"k-{event.body['i']}"
        event.time = event.time + dt.timedelta(hours=1)
        return event

    def g(event):
        i = event.body["i"]
        return [
            Event({"half": 1, "i": i}, key=event.key, time=event.time, id=f"h1-{i}"),
            Event(
                {"half": 2, "i": i},
                key=event.key + "!",
                time=event.time + dt.timedelta(seconds=1),
                id=f"h2-{i}",
            ),
        ]

    steps = [
        Map(f, full_event=True),
        Filter(lambda e: e.key != "drop", full_event=True),
        FlatMap(g, full_event=True),
    ]
    _run_case(case, steps, capture)
    assert_matches(case["expected"]["events"], encoded(capture.seen, with_id=True))


# ---- each step, bodies and full events

EVENTS = make_events([{"v": v} for v in [3, -1, 4, 0]], keys=["a", "b", "a", None])


def _bodies(steps, events=EVENTS):
    (seen,), _ = run_steps([*steps, Capture()], events)
    return [body for body, *_ in seen]


def test_map_replaces_the_body_and_keeps_key_time_and_id():
    (seen,), _ = run_steps([Map(lambda b: b["v"] * 2), Capture()], EVENTS)
    assert seen == [(2 * e[0]["v"], e[1], e[2], e[3]) for e in EVENTS]


def test_map_full_event_can_change_metadata():
    def relabel(event):
        event.key = "new"
        event.id = "id-new"
        event.body = {"old_key": event.key}
        return event

    (seen,), _ = run_steps([Map(relabel, full_event=True), Capture()], EVENTS[:1])
    assert seen == [({"old_key": "new"}, "new", EVENTS[0][2], "id-new")]


def test_map_full_event_can_return_a_new_event():
    when = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    (seen,), _ = run_steps(
        [Map(lambda e: Event(e.body["v"], key="k", time=when), full_event=True), Capture()], EVENTS[:1]
    )
    assert seen == [(3, "k", when, None)]


def test_filter_keeps_events_whose_function_is_truthy():
    assert _bodies([Filter(lambda b: b["v"])]) == [{"v": 3}, {"v": -1}, {"v": 4}]
    assert _bodies([Filter(lambda e: e.key == "a", full_event=True)]) == [{"v": 3}, {"v": 4}]


def test_flatmap_emits_each_item_with_the_input_events_metadata():
    (seen,), _ = run_steps([FlatMap(lambda b: [b["v"]] * max(b["v"], 0)), Capture()], EVENTS[:1])
    assert seen == [(3, "a", EVENTS[0][2], "id-0")] * 3
    assert _bodies([FlatMap(lambda e: [e, e], full_event=True)], EVENTS[:1]) == [{"v": 3}, {"v": 3}]


def test_flatten_emits_the_items_of_list_bodies():
    events = make_events([[1, 2], [], [3]])
    assert _bodies([Flatten()], events) == [1, 2, 3]
    assert Flatten(name="flat").name == "flat"
    assert Flatten().name == "FlatMap"  # it is a FlatMap, named as in the reference


def test_extend_adds_and_overwrites_fields():
    assert _bodies([Extend(lambda b: {"w": b["v"] + 1, "v": 0})], EVENTS[:2]) == [
        {"v": 0, "w": 4},
        {"v": 0, "w": 0},
    ]
    assert _bodies([Extend(lambda e: {"key": e.key}, full_event=True)], EVENTS[:1]) == [{"v": 3, "key": "a"}]


@pytest.mark.parametrize(
    ("fn", "bodies", "error"),
    [
        (lambda b: [("w", 1)], [{"v": 1}], AttributeError),  # a result without items()
        (lambda b: None, [{"v": 1}], AttributeError),
        (lambda b: {"w": 1}, [[1]], TypeError),  # a list body takes no field
        (lambda b: {"w": 1}, [5], TypeError),
    ],
)
def test_extend_fails_as_the_reference_on_results_or_bodies_that_are_not_dicts(fn, bodies, error):
    with pytest.raises(error):
        _bodies([Extend(fn)], make_events(bodies))


def test_extend_stops_calling_the_function_at_the_first_event_it_cannot_extend():
    called = []

    def fn(body):
        called.append(body)
        return {"w": 1}

    capture = Capture()
    with pytest.raises(TypeError):
        run_steps([Extend(fn), capture], make_events([{"v": 1}, 7, {"v": 3}]))
    assert called == [{"v": 1, "w": 1}, 7]
    assert [body for body, *_ in capture.seen] == [{"v": 1, "w": 1}]


def test_foreach_passes_the_events_on_and_ignores_the_result():
    seen = []
    assert _bodies([ForEach(lambda b: seen.append(b["v"]) or "ignored")]) == [e[0] for e in EVENTS]
    assert seen == [3, -1, 4, 0]
    keys = []
    assert len(_bodies([ForEach(lambda e: keys.append(e.key), full_event=True)])) == 4
    assert keys == ["a", "b", "a", None]


def test_mapclass_filter_drops_only_the_current_event():
    class DropNegative(MapClass):
        def do(self, body):
            if body["v"] < 0:
                self.filter()
            return body["v"]

    assert _bodies([DropNegative()]) == [3, 4, 0]


def test_mapclass_full_event():
    class KeyOnly(MapClass):
        def do(self, event):
            event.body = event.key
            return event

    assert _bodies([KeyOnly(full_event=True)]) == ["a", "b", "a", None]


def test_mapclass_without_do_fails():
    with pytest.raises(NotImplementedError):
        run_steps([MapClass(), Capture()], EVENTS)


# ---- long_running: the function runs in an executor thread


def test_long_running_functions_run_outside_the_emitting_thread():
    threads = set()

    def record_thread(body):
        threads.add(threading.get_ident())
        return body

    class RecordThread(MapClass):
        def do(self, body):
            threads.add(threading.get_ident())
            return body

    controller = build_flow(
        [
            SyncEmitSource(),
            Map(record_thread, long_running=True),
            RecordThread(long_running=True),
            Filter(lambda b: b % 2 == 0, long_running=True),
            Reduce([], lambda acc, b: acc + [b]),
        ]
    ).run()
    for i in range(6):
        controller.emit(i)
    controller.terminate()
    assert controller.await_termination() == [0, 2, 4]
    assert threading.get_ident() not in threads


def test_long_running_on_the_async_source():
    async def main():
        controller = build_flow(
            [AsyncEmitSource(), Map(lambda b: b + 1, long_running=True), Reduce(0, lambda a, b: a + b)]
        ).run()
        for i in range(4):
            await controller.emit(i)
        await controller.terminate()
        return await controller.await_termination()

    assert asyncio.run(main()) == 10


# ---- coroutine functions


async def _plus_one(x):
    await asyncio.sleep(0)
    return x + 1


async def _is_odd(x):
    return x % 2


async def _twice(x):
    return [x, x]


async def _tag(body):
    return {"tag": body["v"]}


class _AsyncDo(MapClass):
    async def do(self, x):
        await asyncio.sleep(0)
        if x == 2:
            self.filter()
        return x * 10


@pytest.mark.parametrize("source", [SyncEmitSource, AsyncEmitSource])
@pytest.mark.parametrize(
    ("step", "bodies", "expected"),
    [
        (lambda: Map(_plus_one), [1, 2], [2, 3]),
        (lambda: Filter(_is_odd), [1, 2, 3], [1, 3]),
        (lambda: FlatMap(_twice), [1, 2], [1, 1, 2, 2]),
        (lambda: Extend(_tag), [{"v": 1}], [{"v": 1, "tag": 1}]),
        (lambda: ForEach(_plus_one), [1, 2], [1, 2]),
        (lambda: _AsyncDo(), [1, 2, 3], [10, 30]),
    ],
)
def test_coroutine_functions_are_awaited(source, step, bodies, expected):
    steps = [source(), step(), Reduce([], lambda acc, x: [*acc, x])]

    async def run_async():
        controller = build_flow(steps).run()
        for body in bodies:
            await controller.emit(body)
        await controller.terminate()
        return await controller.await_termination()

    if source is AsyncEmitSource:
        assert asyncio.run(run_async()) == expected
        return
    controller = build_flow(steps).run()
    for body in bodies:
        controller.emit(body)
    controller.terminate()
    assert controller.await_termination() == expected


def test_a_coroutine_function_error_passes_on_the_events_before_it():
    async def fail_on_4(body):
        if body["v"] == 4:
            raise ValueError("bad 4")
        return body

    controller = build_flow([SyncEmitSource(), Map(fail_on_4), Reduce([], lambda acc, x: [*acc, x])]).run()
    with pytest.raises(ValueError, match="bad 4"):
        for body, *_ in EVENTS:
            controller.emit(body)
        controller.terminate()
        controller.await_termination()


# ---- errors


@pytest.mark.parametrize("step", [Map, Filter, FlatMap, Extend, ForEach])
def test_events_before_the_failing_one_are_passed_on(step):
    def fail_on_4(body):
        if body["v"] == 4:
            raise ValueError("bad 4")
        return {"x": 1} if step is Extend else [body] if step is FlatMap else body

    capture = Capture()
    with pytest.raises(ValueError, match="bad 4") as info:
        run_steps([step(fail_on_4, name="failing"), capture], EVENTS)
    assert [body["v"] for body, *_ in capture.seen] == [3, -1]
    assert "raised in step failing" in info.value.__notes__


@pytest.mark.parametrize("full_event", [False, True])
def test_an_error_fails_a_live_flow_with_an_exception_of_the_same_type(full_event):
    def fail(x):
        value = x.body if full_event else x
        if value == 4:
            raise KeyError("bad")
        return x

    controller = build_flow(
        [SyncEmitSource(), Map(fail, full_event=full_event), Reduce(0, lambda a, b: a + b)]
    ).run()
    with pytest.raises(KeyError) as info:
        for i in range(10):
            controller.emit(i)
        controller.terminate()
        controller.await_termination()
    # raised again in the emitting thread, chained from the original
    assert isinstance(info.value.__cause__, KeyError)
    assert info.value.args == ("bad",)
    with pytest.raises(KeyError):
        controller.await_termination()


@pytest.mark.parametrize("step", [Map, Filter, FlatMap, Extend, ForEach])
def test_a_non_callable_fn_is_rejected_at_construction(step):
    with pytest.raises(TypeError, match=f"{step.__name__}: fn must be callable"):
        step("not a function")
