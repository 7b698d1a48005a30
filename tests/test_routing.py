"""Choice (each event to the first downstream whose condition holds) and Partition."""

import pytest

from storey import Choice, Flow, Map, Partition, Reduce, build_flow
from storey.steps.routing import Partitioned
from tests.support.conformance import assert_matches, encode, input_events, load_case
from tests.support.engine import Capture as EngineCapture
from tests.support.engine import make_events, run_steps
from tests.support.step_runs import KINDS, SOURCES, Capture, run, run_source


def _collect():
    return Reduce([], lambda acc, x: acc + [x])


def _branch(name, capture):
    step = Map(lambda body: {**body, "branch": name})
    step.to(capture)
    return step


@pytest.mark.parametrize("kind", KINDS)
def test_conformance_choice_default(kind):
    case = load_case("choice_default")
    captures = {"x": Capture(), "big": Capture(), "default": Capture()}
    choice = Choice(
        [
            (_branch("x", captures["x"]), lambda body: body["tag"] == "x"),
            (_branch("big", captures["big"]), lambda body: body["v"] > 10),
        ],
        default=_branch("default", captures["default"]),
    )
    source = SOURCES[kind]()
    build_flow([source, choice])
    run_source(kind, source, input_events(case))
    assert_matches(case["expected"], {name: c.seen for name, c in captures.items()})


@pytest.mark.parametrize("kind", KINDS)
def test_conformance_partition_predicate(kind):
    case = load_case("partition_predicate")
    capture = Capture()
    run(kind, [Partition(lambda event: event.body["v"] > 5), capture], input_events(case))
    assert_matches(case["expected"], {"events": capture.seen})


@pytest.mark.parametrize("kind", KINDS)
def test_unmatched_events_are_dropped_without_a_default(kind):
    small = _collect()
    result = run(kind, [Choice([(small, lambda x: x < 3)])], range(6))
    assert result == [0, 1, 2]


@pytest.mark.parametrize("kind", KINDS)
def test_termination_reaches_every_downstream_and_the_first_result_wins(kind):
    low, high, rest = _collect(), _collect(), _collect()
    choice = Choice([(low, lambda x: x < 2), (high, lambda x: x > 4)], default=rest)
    assert run(kind, [choice], range(7)) == [0, 1]
    low, high, rest = _collect(), _collect(), _collect()
    choice = Choice([(low, lambda x: x < 2), (high, lambda x: x > 4)], default=rest)
    assert run(kind, [choice], [3, 6]) == []


@pytest.mark.parametrize("kind", KINDS)
def test_conditions_get_events_with_full_event(kind):
    seen = []

    def condition(event):
        seen.append((type(event).__name__, event.key))
        return True

    result = run(kind, [Choice([(_collect(), condition)], full_event=True)], [(1, "k", None)])
    assert result == [1]
    assert seen == [("Event", "k")]


@pytest.mark.parametrize("kind", KINDS)
def test_one_step_for_several_conditions_and_as_default(kind):
    both = _collect()
    choice = Choice([(both, lambda x: x < 2), (both, lambda x: x > 3)], default=both)
    assert run(kind, [choice], range(6)) == [0, 1, 2, 3, 4, 5]


def test_downstreams_that_meet_again_see_events_in_arrival_order():
    def flow():
        even, odd = Map(lambda body: {**body, "parity": "even"}), Map(lambda body: {**body, "parity": "odd"})
        merged = EngineCapture()
        even.to(merged)
        odd.to(merged)
        return [Choice([(even, lambda body: body["i"] % 2 == 0)], default=odd)]

    events = make_events([{"i": i} for i in range(9)])
    for columns in (False, True):
        for sizes in (None, [1] * 9, [4, 5]):
            (seen,), _ = run_steps(flow(), events, sizes, columns=columns)
            assert [r[0]["i"] for r in seen] == list(range(9))
            assert [r[0]["parity"] for r in seen] == ["even", "odd"] * 4 + ["even"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_raising_condition_fails_the_flow_after_routing_the_events_before_it(kind):
    capture = Capture()
    choice = Choice([(capture, lambda x: 1 / (x - 2) != 0)])
    with pytest.raises(ZeroDivisionError):
        run(kind, [choice], range(5))
    assert [e["body"] for e in capture.seen] == [0, 1]


@pytest.mark.parametrize(
    "args, kwargs, error, words",
    [
        ((None,), {}, TypeError, "choice_array"),
        ((5,), {}, TypeError, "choice_array"),
        (("x",), {}, TypeError, "choice_array"),
        (([Map(lambda x: x)],), {}, TypeError, "choice_array"),
        (([(1, lambda x: True)],), {}, TypeError, "step"),
        (([(Map(lambda x: x), 5)],), {}, TypeError, "condition"),
        (([(Map(lambda x: x), lambda x: True)],), {"default": 5}, TypeError, "default"),
    ],
)
def test_choice_bad_parameters_raise_at_construction(args, kwargs, error, words):
    with pytest.raises(error, match=words) as info:
        Choice(*args, name="router", **kwargs)
    assert "router" in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("full_event", [False, True])
def test_partition_predicate_gets_the_event_and_outputs_bodies(kind, full_event):
    seen = []

    def predicate(event):
        seen.append(type(event).__name__)
        return event.body > 1

    capture = Capture(id=True)
    run(kind, [Partition(predicate, full_event=full_event), capture], [(1, "k", None), (2, "k", None)])
    assert seen == ["Event", "Event"]
    assert [e["body"] for e in capture.seen] == [
        encode(Partitioned(left=None, right=1)),
        encode(Partitioned(left=2, right=None)),
    ]
    assert [e["key"] for e in capture.seen] == ["k", "k"]
    assert all(e["id"] is not None for e in capture.seen)


@pytest.mark.parametrize("kind", KINDS)
def test_partition_uses_truthiness(kind):
    result = run(kind, [Partition(lambda event: event.body), _collect()], [0, 1, [], "a"])
    assert result == [(None, 0), (1, None), (None, []), ("a", None)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_raising_predicate_fails_the_flow_after_the_events_before_it(kind):
    capture = Capture()
    with pytest.raises(ZeroDivisionError):
        run(kind, [Partition(lambda event: 1 / (event.body - 2)), capture], range(4))
    assert [e["body"] for e in capture.seen] == [encode(Partitioned(0, None)), encode(Partitioned(1, None))]


def test_partition_bad_predicate_raises_at_construction():
    with pytest.raises(TypeError, match="predicate") as info:
        Partition(None, name="splitter")
    assert "splitter" in str(info.value)


class _Record(Flow):
    """Records the (body, error type) of each event that reaches it."""

    _takes_batches = True  # its _do takes EventBatches

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    async def _do(self, batch):
        for event in batch.events():
            self.seen.append((event.body, type(event.error).__name__ if event.error else None))


@pytest.mark.parametrize("kind", KINDS)
def test_recovery_step_takes_errors_of_conditions_and_of_the_chosen_step_itself(kind):
    # as in the reference: the chosen step runs inside Choice's own processing, the steps after
    # it do not
    recovery = _Record()
    choice = Choice([(_collect(), lambda x: 1 / (x - 2))], recovery_step=recovery)
    assert run(kind, [choice], range(4)) == [0, 1, 3]
    assert recovery.seen == [(2, "ZeroDivisionError")]
    recovery = _Record()
    chosen = Map(lambda x: 1 / (x - 2))
    chosen.to(_collect())
    assert run(kind, [Choice([(chosen, lambda x: True)], recovery_step=recovery)], range(4)) == [
        -0.5,
        -1.0,
        1.0,
    ]
    assert recovery.seen == [(2, "ZeroDivisionError")]
    recovery = _Record()
    chosen = Map(lambda x: x)
    chosen.to(Map(lambda x: 1 / (x - 2))).to(_collect())
    with pytest.raises(ZeroDivisionError):
        run(kind, [Choice([(chosen, lambda x: True)], recovery_step=recovery)], range(4))
    assert recovery.seen == []
