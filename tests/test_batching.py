"""Batch (and its base _Batching): lists of events per group, by size, by time and at termination."""

import asyncio
import datetime as dt
import time

import pytest

from storey import Batch, Event, Map, Reduce, build_flow
from storey.steps.batching import _Batching
from tests.support.conformance import assert_matches, encode, input_events, load_case
from tests.support.engine import Capture as EngineCapture
from tests.support.engine import make_events, run_steps
from tests.support.step_runs import KINDS, SOURCES, Capture, run, run_source

T0 = dt.datetime(2020, 7, 21, 21, 40, tzinfo=dt.UTC)


def _bodies(result):
    return [event.body for event in result]


def _collect():
    return Reduce([], lambda acc, event: acc + [event], full_event=True)


@pytest.mark.parametrize("kind", KINDS)
def test_conformance_batch_sizes(kind):
    case = load_case("batch_sizes")
    captures = {"batch3": Capture(), "batch_all": Capture(), "batch4_full": Capture()}
    source = SOURCES[kind]()
    build_flow(
        [
            source,
            [Batch(3), captures["batch3"]],
            [Batch(), captures["batch_all"]],
            [Batch(4, full_event=True), captures["batch4_full"]],
        ]
    )
    run_source(kind, source, input_events(case))
    assert_matches(case["expected"], {name: c.seen for name, c in captures.items()})


@pytest.mark.parametrize("kind", KINDS)
def test_conformance_batch_by_key(kind):
    case = load_case("batch_by_key")
    captures = {"by_event_key": Capture(), "by_body_field": Capture(), "by_callable": Capture()}
    source = SOURCES[kind]()
    build_flow(
        [
            source,
            [Batch(2, key="$key"), captures["by_event_key"]],
            [Batch(3, key="tag"), captures["by_body_field"]],
            [Batch(2, key=lambda event: event.body["v"] % 2), captures["by_callable"]],
        ]
    )
    run_source(kind, source, input_events(case))
    assert_matches(case["expected"], {name: c.seen for name, c in captures.items()})


@pytest.mark.parametrize("kind", KINDS)
def test_batch_event_has_no_key_no_id_and_the_time_of_its_first_event(kind):
    events = [({"a": i}, f"k{i}", T0 + dt.timedelta(minutes=i)) for i in range(5)]
    result = run(kind, [Batch(2), _collect()], events)
    assert [e.body for e in result] == [[{"a": 0}, {"a": 1}], [{"a": 2}, {"a": 3}], [{"a": 4}]]
    assert [e.key for e in result] == [None, None, None]
    assert [e.id for e in result] == [None, None, None]
    assert [e.time for e in result] == [T0, T0 + dt.timedelta(minutes=2), T0 + dt.timedelta(minutes=4)]


@pytest.mark.parametrize("kind", KINDS)
def test_full_event_batches_hold_the_events_with_their_metadata(kind):
    events = [Event({"a": i}, key=f"k{i}", time=T0 + dt.timedelta(seconds=i), id=f"id{i}") for i in range(3)]
    result = run(kind, [Batch(3, full_event=True), _collect()], events)
    (batch,) = result
    assert [(e.body, e.key, e.id, e.time) for e in batch.body] == [
        ({"a": i}, f"k{i}", f"id{i}", T0 + dt.timedelta(seconds=i)) for i in range(3)
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_without_max_events_everything_is_one_batch_at_termination(kind):
    assert _bodies(run(kind, [Batch(), _collect()], range(7))) == [list(range(7))]


@pytest.mark.parametrize("kind", KINDS)
def test_groups_finished_early_start_again_at_the_end_of_the_termination_order(kind):
    events = [("a1", "a", None), ("b1", "b", None), ("a2", "a", None), ("c1", "c", None), ("a3", "a", None)]
    result = run(kind, [Batch(2, key="$key"), _collect()], events)
    assert _bodies(result) == [["a1", "a2"], ["b1"], ["c1"], ["a3"]]


@pytest.mark.parametrize("kind", KINDS)
def test_list_keys_group_by_their_items(kind):
    events = [(1, ["a", 1], None), (2, ["b", 1], None), (3, ["a", 1], None)]
    assert _bodies(run(kind, [Batch(2, key="$key"), _collect()], events)) == [[1, 3], [2]]


def _batch_events(n):
    return make_events([{"i": i, "g": "xyz"[i % 3], "v": i * 1.5} for i in range(n)])


@pytest.mark.parametrize(
    "step",
    [
        lambda: Batch(4),
        lambda: Batch(),
        lambda: Batch(3, key="g"),
        lambda: Batch(2, key=lambda event: event.body["i"] % 2),
        lambda: Batch(3, full_event=True),
    ],
    ids=["size", "all", "field", "callable", "full_event"],
)
@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns"])
def test_batches_span_input_batches(step, columns):
    events = _batch_events(11)

    def outputs(sizes):
        (seen,), _ = run_steps([step(), Map(encode), EngineCapture()], events, sizes, columns=columns)
        return seen

    one_by_one = outputs([1] * len(events))
    assert outputs(None) == one_by_one
    assert outputs([3, 1, 4, 1, 5]) == one_by_one
    assert one_by_one


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


async def _async_wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def test_flush_after_seconds_emits_a_partial_batch_sync():
    capture = Capture()
    source = SOURCES["sync"]()
    build_flow([source, Batch(100, flush_after_seconds=0.3), capture])
    controller = source.run()
    controller.emit(1)
    controller.emit(2)
    assert _wait_for(lambda: len(capture.seen) == 1)
    controller.emit(3)
    controller.terminate()
    controller.await_termination()
    assert [e["body"] for e in capture.seen] == [[1, 2], [3]]


def test_flush_after_seconds_emits_a_partial_batch_async():
    capture = Capture()
    source = SOURCES["async"]()
    build_flow([source, Batch(100, flush_after_seconds=0.3), capture])

    async def main():
        controller = source.run()
        await controller.emit(1)
        await controller.emit(2)
        assert await _async_wait_for(lambda: len(capture.seen) == 1)
        await controller.emit(3)
        await controller.terminate()
        await controller.await_termination()

    asyncio.run(main())
    assert [e["body"] for e in capture.seen] == [[1, 2], [3]]


def test_flush_after_seconds_without_max_events_and_per_key():
    capture = Capture()
    source = SOURCES["sync"]()
    build_flow([source, Batch(flush_after_seconds=0.3, key="$key"), capture])
    controller = source.run()
    controller.emit("a1", key="a")
    controller.emit("b1", key="b")
    controller.emit("a2", key="a")
    assert _wait_for(lambda: len(capture.seen) == 2)
    controller.emit("b2", key="b")
    controller.terminate()
    controller.await_termination()
    assert sorted(e["body"] for e in capture.seen[:2]) == [["a1", "a2"], ["b1"]]
    assert capture.seen[2]["body"] == ["b2"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_key_field_fails_the_flow_after_batching_the_events_before_it(kind):
    capture = Capture()
    with pytest.raises(KeyError):
        run(kind, [Batch(1, key="f"), capture], [{"f": 1}, {"f": 2}, {"g": 3}, {"f": 4}])
    assert [e["body"] for e in capture.seen] == [[{"f": 1}], [{"f": 2}]]


@pytest.mark.parametrize("kind", KINDS)
def test_a_raising_key_function_fails_the_flow(kind):
    with pytest.raises(ZeroDivisionError):
        run(kind, [Batch(2, key=lambda event: 1 / (event.body - 1)), _collect()], [0, 1, 2])


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"max_events": 0}, ValueError, "max_events"),
        ({"max_events": -2}, ValueError, "max_events"),
        ({"max_events": "2"}, TypeError, "max_events"),
        ({"max_events": 2.5}, TypeError, "max_events"),
        ({"flush_after_seconds": -1}, ValueError, "flush_after_seconds"),
        ({"flush_after_seconds": "soon"}, TypeError, "flush_after_seconds"),
        ({"key": 5}, ValueError, "key"),
    ],
)
def test_bad_parameters_raise_at_construction(kwargs, error, words):
    with pytest.raises(error, match=words) as info:
        Batch(name="my_batch", **kwargs)
    assert "my_batch" in str(info.value)


class _CountingBatches(_Batching):
    """A _Batching subclass that emits (group key, number of events) for each finished group."""

    async def _flush(self, finished):
        from storey.core.batch import EventBatch

        bodies = [(key, events.n) for key, events in finished]
        await self._emit(
            EventBatch(len(bodies), bodies=bodies, time_values=[T0] * len(bodies), keys=[None] * len(bodies))
        )


@pytest.mark.parametrize("kind", KINDS)
def test_batching_base_hands_finished_groups_to_subclasses(kind):
    bodies = [{"g": g} for g in "aabab"]
    result = run(kind, [_CountingBatches(max_events=2, key="g"), _collect()], bodies)
    assert _bodies(result) == [("a", 2), ("b", 2), ("a", 1)]
