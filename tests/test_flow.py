"""The flow graph: wiring with to() and build_flow, termination results, Complete, Reduce, Context."""

import asyncio

import pytest

from storey import (
    AsyncEmitSource,
    Complete,
    Context,
    Filter,
    FlatMap,
    Flow,
    Map,
    Reduce,
    SyncEmitSource,
    build_flow,
)
from tests.support.conformance import assert_matches, input_events, load_case
from tests.support.engine import Capture, emit_all, encoded, make_events, run_steps


def _run(source, events):
    controller = source.run()
    emit_all(controller, events)
    controller.terminate()
    return controller.await_termination()


def test_conformance_graph_to_branches():
    case = load_case("graph_to_branches")
    events = input_events(case)
    filtered, mapped, ids = Capture(), Capture(), Capture()
    source = SyncEmitSource()
    m = source.to(Map(lambda b: {**b, "m": 1}))
    m.to(Filter(lambda b: b["v"] > 3)).to(filtered)
    m.to(mapped)
    source.to(Map(lambda b: b["i"])).to(ids)
    _run(source, events)
    expected = case["expected"]
    assert_matches(expected["filtered"], encoded(filtered.seen))
    assert_matches(expected["mapped"], encoded(mapped.seen))
    assert_matches(expected["ids"], encoded(ids.seen))

    nested_b, nested_main = Capture(), Capture()
    source = build_flow(
        [
            SyncEmitSource(),
            Map(lambda b: {**b, "a": 1}),
            [Map(lambda b: {**b, "b1": 1}), nested_b],
            Map(lambda b: {**b, "c": 1}),
            nested_main,
        ]
    )
    _run(source, events)
    assert_matches(expected["nested_b"], encoded(nested_b.seen))
    assert_matches(expected["nested_main"], encoded(nested_main.seen))


def test_conformance_reduce_variants():
    case = load_case("reduce_variants")
    events = input_events(case)
    expected = case["expected"]
    assert (
        _run(build_flow([SyncEmitSource(), Reduce(0, lambda acc, b: acc + b["v"])]), events)
        == expected["sum"]
    )
    keys = _run(
        build_flow(
            [SyncEmitSource(), Reduce([], lambda acc, e: acc + [[e.key, e.body["i"]]], full_event=True)]
        ),
        events,
    )
    assert keys == expected["keys"]
    two = build_flow(
        [
            SyncEmitSource(),
            [Map(lambda b: b["v"]), Reduce(0, max)],
            Reduce(None, lambda acc, b: b["i"]),
        ]
    )
    assert _run(two, events) == expected["two_branches"]
    assert _run(build_flow([SyncEmitSource(), Reduce(1000, lambda acc, b: acc + 1)]), []) == expected["empty"]


def test_build_flow_returns_the_first_step_and_chains_the_rest():
    source = SyncEmitSource()
    a, b, c = Map(lambda x: x), Map(lambda x: x), Map(lambda x: x)
    assert build_flow([source, a, [b], c]) is source
    assert source._outlets == [a]
    assert a._outlets == [b, c]
    assert build_flow([[source]]) is source


def test_build_flow_and_to_reject_bad_arguments():
    with pytest.raises(ValueError, match="Cannot build an empty flow"):
        build_flow([])
    with pytest.raises(TypeError, match=r"Map.to\(\): expected a step"):
        Map(lambda x: x).to(lambda x: x)


def test_to_returns_the_outlet_for_chaining():
    first = Map(lambda x: x)
    second = Map(lambda x: x)
    assert first.to(second) is second


def test_reduce_is_terminal():
    with pytest.raises(ValueError, match="Reduce is a terminal step"):
        Reduce(0, lambda a, b: a).to(Map(lambda x: x))


def test_reduce_fn_must_be_callable():
    with pytest.raises(TypeError, match="Reduce: fn must be callable"):
        Reduce(0, "sum")


def test_a_flow_must_start_with_a_source():
    with pytest.raises(ValueError, match="Flow must start with a source"):
        build_flow([Map(lambda x: x), Reduce(0, lambda a, b: a)]).run()


def test_reduce_awaits_a_coroutine_function():
    async def add(acc, x):
        return acc + x

    flow = build_flow([SyncEmitSource(), Reduce(0, add)])
    assert _run(flow, [(1, None, None), (2, None, None)]) == 3


def test_reduce_starts_again_from_its_initial_value_on_each_run():
    flow = build_flow([SyncEmitSource(), Reduce([], lambda acc, x: acc + [x])])
    assert _run(flow, [(1, None, None)]) == [1]
    assert _run(flow, [(2, None, None)]) == [2]


def test_termination_result_fn_combines_branch_results():
    flow = build_flow(
        [
            SyncEmitSource(termination_result_fn=lambda a, b: (a or 0) + b),
            [Reduce(0, lambda acc, x: acc + x)],
            Reduce(100, lambda acc, x: acc + x),
        ]
    )
    assert _run(flow, [(1, None, None), (2, None, None)]) == 3 + 103


def test_termination_result_fn_starts_from_the_first_outlet_result():
    calls = []

    def combine(a, b):
        calls.append((a, b))
        return [a, b]

    single = build_flow([SyncEmitSource(termination_result_fn=combine), Reduce(1, lambda acc, x: acc)])
    assert _run(single, [(0, None, None)]) == 1
    assert calls == []
    source = SyncEmitSource(termination_result_fn=combine)
    source.to(Map(lambda x: x))
    source.to(Reduce(1, lambda acc, x: acc))
    source.to(Reduce(2, lambda acc, x: acc))
    assert _run(source, [(0, None, None)]) == [[None, 1], 2]
    assert calls == [(None, 1), ([None, 1], 2)]


def test_build_flow_rejects_an_empty_branch():
    with pytest.raises(ValueError):
        build_flow([SyncEmitSource(), []])


def test_the_first_non_none_branch_result_is_the_default():
    flow = build_flow([SyncEmitSource(), [Map(lambda x: x)], Reduce(0, lambda acc, x: acc + x)])
    assert _run(flow, [(5, None, None)]) == 5


def test_a_step_joined_by_two_branches_is_terminated_once_after_both():
    terminations = []

    class Counting(Flow):
        async def _on_terminate(self):
            terminations.append(self.name)
            return "joined"

    join = Counting(name="join")
    left, right = Map(lambda x: x), Map(lambda x: -x)
    left.to(join)
    right.to(join)
    captures, result = run_steps([[left], right], make_events([1]))
    assert terminations == ["join"]
    assert result == "joined"


def test_complete_passes_events_on():
    (seen,), _ = run_steps([Complete(), Capture()], make_events([1, 2]))
    assert [body for body, *_ in seen] == [1, 2]


def test_context_holds_parameters_secrets_and_tables():
    context = Context(initial_secrets={"s": "x"}, initial_parameters={"p": 1}, initial_tables={"t": "table"})
    assert context.get_param("p", None) == 1
    assert context.get_param("missing", "default") == "default"
    context.set_param("q", 2)
    assert context.get_param("q", None) == 2
    assert context.get_secret("s") == "x"
    assert context.get_secret("missing") is None
    context.set_secret("s2", "y")
    assert context.get_secret("s2") == "y"
    assert context.get_table("t") == "table"
    context.set_table("u", "other")
    assert context.get_table("u") == "other"
    step = Map(lambda x: x, context=context)
    assert step.context is context


def test_step_names_default_to_the_class_name():
    assert Map(lambda x: x).name == "Map"
    assert Map(lambda x: x, name="double").name == "double"


class _Shared:
    """State two steps share: the engine must hand them events one at a time."""


def test_steps_sharing_state_see_each_event_before_the_next():
    shared = _Shared()
    log = []

    class Writer(Flow):
        _takes_batches = True  # its _do takes EventBatches

        def _state_objects(self):
            return (shared,)

        async def _do(self, batch):
            for body in batch.bodies_to_change():
                log.append(("write", body))
            await self._emit(batch)

    class Reader(Flow):
        _takes_batches = True  # its _do takes EventBatches

        def _state_objects(self):
            return (shared,)

        async def _do(self, batch):
            for body in batch.bodies_to_change():
                log.append(("read", body))
            await self._emit(batch)

    run_steps([Writer(), Map(lambda x: x), Reader()], make_events([1, 2]))
    assert log == [("write", 1), ("read", 1), ("write", 2), ("read", 2)]


def test_steps_are_importable_from_storey_flow_as_in_storey():
    import storey.flow
    from storey.steps import HttpRequest, Recover, SendToHttp
    from storey.steps.http import _ConcurrentJobExecution

    assert storey.flow.Map is Map
    assert storey.flow.Recover is Recover
    assert storey.flow.SendToHttp is SendToHttp
    assert storey.flow.HttpRequest is HttpRequest
    assert storey.flow._ConcurrentJobExecution is _ConcurrentJobExecution
    with pytest.raises(AttributeError):
        storey.flow.NoSuchStep  # noqa: B018


def test_storey_flow_gives_the_names_storey_1_0_6_defined_there():
    import storey.flow
    from storey import Event, FlowError, Table, V3ioError
    from storey.steps import Choice, JoinWithTable, Map, Recover, SendToHttp

    assert storey.flow.Event is Event
    assert storey.flow.FlowError is FlowError
    assert storey.flow.V3ioError is V3ioError
    assert storey.flow.Table is Table
    assert storey.flow.Map is Map and storey.flow.Choice is Choice and storey.flow.Recover is Recover
    assert storey.flow.JoinWithTable is JoinWithTable and storey.flow.SendToHttp is SendToHttp
    with pytest.raises(AttributeError):
        storey.flow.NoSuchStep  # noqa: B018


@pytest.mark.parametrize("source", [SyncEmitSource, AsyncEmitSource])
def test_a_live_flow_that_branches_takes_each_event_down_every_branch_before_the_next(source):
    # what the branches' functions see interleaves as in the reference's event-by-event run
    seen = []

    def tag(name):
        return Map(lambda x: seen.append((name, x)) or x)

    flow = build_flow([source(buffer_size=8), tag("pre"), [tag("b1"), [tag("b1.1")]], tag("b2")])
    if source is SyncEmitSource:
        controller = flow.run()
        for i in range(3):
            controller.emit(i)
        controller.terminate()
        controller.await_termination()
    else:

        async def main():
            controller = flow.run()
            for i in range(3):
                await controller.emit(i)
            await controller.terminate()
            await controller.await_termination()

        asyncio.run(main())
    assert seen == [(name, i) for i in range(3) for name in ["pre", "b1", "b1.1", "b2"]]


def test_events_a_step_makes_of_one_event_go_down_the_branches_one_by_one():
    seen = []
    flow = build_flow(
        [
            SyncEmitSource(),
            FlatMap(lambda x: [x, x + 10]),
            [Map(lambda x: seen.append(("b1", x)) or x)],
            Map(lambda x: seen.append(("b2", x)) or x),
        ]
    )
    controller = flow.run()
    controller.emit(1)
    controller.terminate()
    controller.await_termination()
    assert seen == [("b1", 1), ("b2", 1), ("b1", 11), ("b2", 11)]


def _fail_on_2(x):
    if x == 2:
        raise ValueError("bad 2")
    return x


@pytest.mark.parametrize("failing_first", [True, False])
def test_a_failing_branch_does_not_keep_the_event_from_the_other_branches(failing_first):
    capture = Capture()
    branches = [[Map(_fail_on_2)], [capture]]
    if not failing_first:
        branches.reverse()
    flow = build_flow([SyncEmitSource(), *branches])
    controller = flow.run()
    with pytest.raises(ValueError, match="bad 2"):
        for i in range(5):
            controller.emit(i)
        controller.terminate()
        controller.await_termination()
    assert [body for body, *_ in capture.seen] == [0, 1, 2]


def test_the_first_branch_to_finish_an_event_decides_its_result():
    # a branch that fails before the one with Complete fails the result...
    flow = build_flow([SyncEmitSource(), [Map(_fail_on_2)], Complete()])
    controller = flow.run()
    assert controller.emit(1).await_result() == 1
    with pytest.raises(ValueError, match="bad 2"):
        controller.emit(2).await_result()
    controller.terminate()
    with pytest.raises(ValueError):
        controller.await_termination()
    # ... while one that fails after it leaves the result; the flow fails all the same
    flow = build_flow([SyncEmitSource(), [Complete()], Map(_fail_on_2)])
    controller = flow.run()
    assert controller.emit(2).await_result() == 2
    controller.terminate()
    with pytest.raises(ValueError):
        controller.await_termination()
