"""Assert: checks on the events passing a point of a flow."""

import pytest

from storey import Assert, Event, Reduce
from tests.support.step_runs import KINDS, Capture, run


def _collect():
    return Reduce([], lambda acc, x: acc + [x])


def _outcome(kind, step, bodies=(1, 2, 3), **kwargs):
    """(termination result or None, error message or None, bodies that passed the Assert)."""
    capture = Capture()
    try:
        result = run(kind, [step, capture, _collect()], list(bodies), **kwargs)
        error = None
    except AssertionError as ex:
        result, error = None, str(ex)
    return result, error, [e["body"] for e in capture.seen]


def test_checks_chain():
    step = Assert()
    assert step.greater_than(1) is step
    assert step.each_event(lambda x: True).contains_all_of([1]).match_exactly([1]).exactly(1) is step


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "method, expected, message",
    [
        ("greater_than", 2, None),
        ("greater_than", 3, "Expected event count > 3, got 3 instead"),
        ("greater_or_equal_to", 3, None),
        ("greater_or_equal_to", 4, "Expected event count >= 4, got 3 instead"),
        ("less_than", 4, None),
        ("less_than", 3, "Expected event count < 3, got 3 instead"),
        ("less_or_equal_to", 3, None),
        ("less_or_equal_to", 2, "Expected event count <= 2, got 3 instead"),
        ("exactly", 3, None),
        ("exactly", 2, "Expected event count == 2, got 3 instead"),
        ("exactly", 4, "Expected event count == 4, got 3 instead"),
    ],
)
def test_count_checks_at_termination(kind, method, expected, message):
    result, error, passed = _outcome(kind, getattr(Assert(), method)(expected))
    assert error == message
    assert passed == [1, 2, 3]
    if message is None:
        assert result == [1, 2, 3]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "method, expected, bodies, message",
    [
        ("contains_all_of", [1, 2], [1, 2, 3], None),
        ("contains_all_of", [1, 1, 1], [1], None),
        ("contains_all_of", [], [1], None),
        ("contains_all_of", [1, 5], [1, 2, 3], "Expected all of [1, 2, 3] in [1, 5]"),
        ("contains_all_of", (1, 5), [1, 2, 3], "Expected all of [1, 2, 3] in (1, 5)"),
        ("contains_any_of", [5, 2], [1, 2, 3], None),
        ("contains_any_of", [5, 6], [1, 2, 3], "Expected any of [1, 2, 3] in [5, 6]"),
        ("contains_any_of", [], [1], "Expected any of [1] in []"),
        ("contains_any_of", [1], [], "Expected any of [] in [1]"),
        ("contains_none_of", [5, 6], [1, 2, 3], None),
        ("contains_none_of", [5, 1], [1, 2, 3], "Expected none of [1, 2, 3] in [5, 1]"),
        ("match_exactly", [3, 2, 1], [1, 2, 3], None),
        ("match_exactly", [1, 2, 2], [1, 1, 2], None),
        ("match_exactly", [], [], None),
        ("match_exactly", [1, 2], [1, 2, 3], "Expected exactly [1, 2, 3] in [1, 2]"),
        ("match_exactly", [1, 2], [1, 1, 2], "Expected exactly [1, 1, 2] in [1, 2]"),
        ("match_exactly", [1, 1, 1], [1, 2, 3], "Expected exactly [1, 2, 3] in [1, 1, 1]"),
        ("match_exactly", [{"b": 2}, {"a": 1}], [{"a": 1}, {"b": 2}], None),
    ],
)
def test_content_checks_at_termination(kind, method, expected, bodies, message):
    _, error, passed = _outcome(kind, getattr(Assert(), method)(expected), bodies)
    assert error == message
    assert passed == bodies


@pytest.mark.parametrize("kind", KINDS)
def test_termination_checks_run_in_the_order_they_were_added(kind):
    def error_of(step):
        return _outcome(kind, step)[1]

    assert error_of(Assert().greater_than(5).less_than(3)) == "Expected event count > 5, got 3 instead"
    assert error_of(Assert().less_than(10).greater_than(5)) == "Expected event count > 5, got 3 instead"
    assert error_of(Assert().contains_all_of([5]).exactly(9)) == "Expected all of [1, 2, 3] in [5]"
    assert error_of(Assert().exactly(9).contains_all_of([5])) == "Expected event count == 9, got 3 instead"
    assert error_of(Assert().contains_none_of([9]).contains_all_of([5])) == "Expected all of [1, 2, 3] in [5]"
    assert error_of(Assert().contains_all_of([1]).match_exactly([1, 2, 3]).exactly(3)) is None


@pytest.mark.parametrize("kind", KINDS)
def test_each_event_fails_at_the_first_false_event_which_does_not_pass(kind):
    _, error, passed = _outcome(kind, Assert().each_event(lambda x: x != 2), [1, 2, 3])
    assert error == "Predicate results in False for Event 2"
    assert passed == [1]
    _, error, passed = _outcome(kind, Assert().each_event(lambda x: x > 0).each_event(lambda x: x < 3))
    assert error == "Predicate results in False for Event 3"
    assert passed == [1, 2]
    assert _outcome(kind, Assert().each_event(lambda x: [1]))[1] is None
    assert _outcome(kind, Assert().each_event(lambda x: None))[1] == "Predicate results in False for Event 1"


@pytest.mark.parametrize("kind", KINDS)
def test_each_event_gets_events_with_full_event(kind):
    seen = []
    step = Assert(full_event=True).each_event(
        lambda event: seen.append(type(event).__name__) or event.key == "k"
    )
    result, error, _ = _outcome(kind, step, [(1, "k", None), (2, "k", None)])
    assert error is None and result == [1, 2]
    assert seen == ["Event", "Event"]
    _, error, _ = _outcome(kind, Assert(full_event=True).each_event(lambda event: event.body < 2), [1, 2])
    assert error.startswith("Predicate results in False for Event Event(") and "body=2" in error


@pytest.mark.parametrize("kind", KINDS)
def test_full_event_content_checks_compare_events(kind):
    events = [Event(1, key="k", id="a"), Event(2, key="k", id="b")]
    capture = Capture()
    expected = [Event(2, time=events[1].time, id="b"), Event(1, time=events[0].time, id="a")]
    run(kind, [Assert(full_event=True).match_exactly(expected), capture], events)
    assert len(capture.seen) == 2
    with pytest.raises(AssertionError, match="Expected all of"):
        run(kind, [Assert(full_event=True).contains_all_of([1])], [Event(1)])


@pytest.mark.parametrize("kind", KINDS)
def test_a_raising_predicate_fails_the_flow_with_its_error(kind):
    with pytest.raises(ZeroDivisionError):
        run(kind, [Assert().each_event(lambda x: 1 / (x - 2))], [1, 2, 3])


@pytest.mark.parametrize("kind", KINDS)
def test_a_rerun_flow_counts_from_zero(kind):
    from storey import build_flow
    from tests.support.step_runs import SOURCES, run_source

    source = SOURCES[kind]()
    build_flow([source, Assert().exactly(2), _collect()])
    assert run_source(kind, source, [1, 2]) == [1, 2]
    assert run_source(kind, source, [3, 4]) == [3, 4]


@pytest.mark.parametrize(
    "method, argument",
    [
        ("exactly", "3"),
        ("greater_than", 1.5),
        ("less_than", None),
        ("each_event", 5),
        ("contains_all_of", 5),
        ("match_exactly", None),
    ],
)
def test_bad_check_arguments_raise_when_the_check_is_added(method, argument):
    with pytest.raises(TypeError) as info:
        getattr(Assert(name="checker"), method)(argument)
    assert "checker" in str(info.value)
