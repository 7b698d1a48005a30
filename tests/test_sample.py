"""SampleWindow: the first or last event of every window of events, per group."""

import pytest

from storey import Map, Reduce, SampleWindow, build_flow
from storey.steps.sample import EmitPeriod
from tests.support.conformance import assert_matches, encode, input_events, load_case
from tests.support.engine import Capture as EngineCapture
from tests.support.engine import make_events, run_steps
from tests.support.step_runs import KINDS, SOURCES, Capture, run, run_source


def _collect():
    return Reduce([], lambda acc, event: acc + [event], full_event=True)


def _bodies(result):
    return [event.body for event in result]


VARIANTS = {
    "first3": lambda: SampleWindow(3),
    "last3": lambda: SampleWindow(3, emit_period=EmitPeriod.LAST),
    "last3_term": lambda: SampleWindow(3, EmitPeriod.LAST, emit_before_termination=True),
    "first4_term": lambda: SampleWindow(4, EmitPeriod.FIRST, emit_before_termination=True),
    "last2_by_key": lambda: SampleWindow(2, EmitPeriod.LAST, key="$key"),
    "first2_by_tag": lambda: SampleWindow(2, EmitPeriod.FIRST, key="tag"),
    "last2_callable_term": lambda: SampleWindow(
        2, EmitPeriod.LAST, emit_before_termination=True, key=lambda event: event.body["v"] > 5
    ),
}


@pytest.mark.parametrize("kind", KINDS)
def test_conformance_sample_window_variants(kind):
    case = load_case("sample_window_variants")
    captures = {name: Capture() for name in VARIANTS}
    source = SOURCES[kind]()
    build_flow([source, *[[make(), captures[name]] for name, make in VARIANTS.items()]])
    run_source(kind, source, input_events(case))
    assert_matches(case["expected"], {name: c.seen for name, c in captures.items()})


@pytest.mark.parametrize("kind", KINDS)
def test_emitted_events_keep_key_time_and_id(kind):
    result = run(kind, [SampleWindow(2), _collect()], [(i, f"k{i}", None) for i in range(4)])
    assert [(e.body, e.key) for e in result] == [(0, "k0"), (2, "k2")]
    assert all(e.id is not None for e in result)


@pytest.mark.parametrize("kind", KINDS)
def test_termination_emits_only_the_last_event_seen_and_only_if_not_emitted(kind):
    events = [("a1", "a", None), ("b1", "b", None), ("a2", "a", None), ("c1", "c", None)]
    events += [("a3", "a", None), ("a4", "a", None), ("b2", "b", None)]
    last = SampleWindow(3, EmitPeriod.LAST, emit_before_termination=True, key="$key")
    assert _bodies(run(kind, [last, _collect()], events)) == ["a3", "b2"]
    first = SampleWindow(3, EmitPeriod.FIRST, emit_before_termination=True, key="$key")
    assert _bodies(run(kind, [first, _collect()], events)) == ["a1", "b1", "c1", "a4", "b2"]
    exact = SampleWindow(3, EmitPeriod.LAST, emit_before_termination=True)
    assert _bodies(run(kind, [exact, _collect()], range(9))) == [2, 5, 8]


@pytest.mark.parametrize("kind", KINDS)
def test_key_function_receives_the_event(kind):
    seen = []

    def key(event):
        seen.append(type(event).__name__)
        return event.key

    assert _bodies(run(kind, [SampleWindow(2, key=key), _collect()], [(1, "a", None), (2, "a", None)])) == [1]
    assert seen == ["Event", "Event"]


@pytest.mark.parametrize(
    "step",
    [
        lambda: SampleWindow(3),
        lambda: SampleWindow(4, EmitPeriod.LAST, emit_before_termination=True),
        lambda: SampleWindow(2, EmitPeriod.FIRST, key="g"),
        lambda: SampleWindow(2, EmitPeriod.LAST, emit_before_termination=True, key=lambda e: e.body["i"] % 3),
    ],
    ids=["first", "last_term", "field", "callable_term"],
)
@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns"])
def test_windows_span_input_batches(step, columns):
    events = make_events([{"i": i, "g": "xy"[i % 2 if i < 6 else 0]} for i in range(13)])

    def outputs(sizes):
        (seen,), _ = run_steps([step(), Map(encode), EngineCapture()], events, sizes, columns=columns)
        return seen

    one_by_one = outputs([1] * len(events))
    assert one_by_one
    assert outputs(None) == one_by_one
    assert outputs([2, 5, 1, 3]) == one_by_one


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_key_field_fails_the_flow_after_sampling_the_events_before_it(kind):
    capture = Capture()
    with pytest.raises(KeyError):
        run(kind, [SampleWindow(2, key="f"), capture], [{"f": 1}, {"f": 2}, {"g": 3}])
    assert [e["body"] for e in capture.seen] == [{"f": 1}, {"f": 2}]


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"window_size": 1}, ValueError, "window_size"),
        ({"window_size": 0}, ValueError, "window_size"),
        ({"window_size": 2.5}, TypeError, "window_size"),
        ({"window_size": "2"}, TypeError, "window_size"),
        ({"window_size": 2, "emit_period": "FIRST"}, ValueError, "emit_period"),
        ({"window_size": 2, "emit_period": 1}, ValueError, "emit_period"),
        ({"window_size": 2, "key": 3}, ValueError, "key"),
    ],
)
def test_bad_parameters_raise_at_construction(kwargs, error, words):
    with pytest.raises(error, match=words) as info:
        SampleWindow(name="sampler", **kwargs)
    assert "sampler" in str(info.value)


def test_emit_period_values():
    assert [p.name for p in EmitPeriod] == ["FIRST", "LAST"]
    assert EmitPeriod.FIRST.value == 1 and EmitPeriod.LAST.value == 2
