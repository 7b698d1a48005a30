"""MapWithState: a user function with a global state, a state per key in a dict, or in a Table."""

import pytest

from storey import Event, Flow, MapWithState, NoopDriver, Reduce, Table, build_flow
from tests.support.conformance import assert_matches, encode, input_events, load_case
from tests.support.engine import Capture as EngineCapture
from tests.support.engine import make_events, run_steps
from tests.support.step_runs import KINDS, SOURCES, Capture, run, run_source


def _collect():
    return Reduce([], lambda acc, x: acc + [x])


def _running_total(body, state):
    new_state = {"total": state["total"] + body["v"], "n": state["n"] + 1}
    return {"v": body["v"], "running_total": new_state["total"], "n": new_state["n"]}, new_state


def _count_and_sum(body, state):
    count, total = state.get("count", 0), state.get("sum", 0)
    new_state = {"count": count + 1, "sum": total + body["v"]}
    return {"v": body["v"], "prev_count": count, "sum": new_state["sum"]}, new_state


@pytest.mark.parametrize("kind", KINDS)
def test_conformance_mapwithstate_global(kind):
    case = load_case("mapwithstate_global")
    capture = Capture()
    run(kind, [MapWithState({"total": 0, "n": 0}, _running_total), capture], input_events(case))
    assert_matches(case["expected"], {"events": capture.seen})


@pytest.mark.parametrize("kind", KINDS)
def test_conformance_mapwithstate_by_key_table(kind):
    case = load_case("mapwithstate_by_key_table")
    table = Table("conf_table", NoopDriver())
    capture = Capture()
    run(kind, [MapWithState(table, _count_and_sum, group_by_key=True), capture], input_events(case))
    assert_matches(case["expected"]["events"], capture.seen)
    for expected in case["expected"]["final_state"]:
        state = dict(expected["body"])
        del state["who"]
        assert (table._get_static(expected["key"]) or {}) == state


@pytest.mark.parametrize("kind", KINDS)
def test_per_key_state_in_a_dict(kind):
    # the reference fails here with AttributeError (case mapwithstate_by_key_dict_raises): a
    # documented difference, the dict holds a state per key as the API document allows
    case = load_case("mapwithstate_by_key_dict_raises")
    states = {"a": 0, "b": 0}
    result = run(
        kind,
        [MapWithState(states, lambda body, state: (body, state + 1), group_by_key=True), _collect()],
        input_events(case),
    )
    assert result == [{"v": 1}, {"v": 2}]
    assert states == {"a": 1, "b": 1}
    states = {"a": 10, "b": 0}
    fn = lambda body, state: ((body, state), state + body)  # noqa: E731
    events = [(1, "a", None), (2, "b", None), (3, "a", None), (4, ["x", 1], None)]
    states[("x", 1)] = 100
    result = run(kind, [MapWithState(states, fn, group_by_key=True), _collect()], events)
    assert result == [(1, 10), (2, 0), (3, 11), (4, 100)]
    assert states == {"a": 14, "b": 2, ("x", 1): 104}


@pytest.mark.parametrize("kind", KINDS)
def test_a_key_missing_from_the_dict_fails_the_flow(kind):
    capture = Capture()
    with pytest.raises(KeyError):
        run(
            kind,
            [MapWithState({"a": 0}, lambda b, s: (b, s + 1), group_by_key=True), capture],
            [(1, "a", None), (2, "zz", None)],
        )
    assert [e["body"] for e in capture.seen] == [1]


@pytest.mark.parametrize("kind", KINDS)
def test_table_state_starts_empty_or_with_the_tables_attributes_and_new_states_merge(kind):
    table = Table("t", NoopDriver())
    table._set_static("b", {"loaded": True})
    seen = []

    def fn(body, state):
        seen.append((body, dict(state), id(state)))
        return body, ({"x": body} if body < 3 else {"y": body})

    run(
        kind,
        [MapWithState(table, fn, group_by_key=True), _collect()],
        [(1, "a", None), (2, "b", None), (3, "a", None), (4, "a", None)],
    )
    assert [(body, state) for body, state, _ in seen] == [
        (1, {}),
        (2, {"loaded": True}),
        (3, {"x": 1}),
        (4, {"x": 1, "y": 3}),
    ]
    # the state a function receives is the dict the table keeps
    assert seen[0][2] == seen[2][2] == seen[3][2] == id(table._get_static("a"))
    assert table._get_static("a") == {"x": 1, "y": 4}
    assert table._get_static("b") == {"loaded": True, "x": 2}


@pytest.mark.parametrize("kind", KINDS)
def test_table_keys_none_and_lists(kind):
    table = Table("t", NoopDriver())
    fn = lambda body, state: (state.get("n", 0), {"n": state.get("n", 0) + 1})  # noqa: E731
    result = run(
        kind,
        [MapWithState(table, fn, group_by_key=True), _collect()],
        [(1, ["a", 1], None), (2, ["a", 1], None), (3, None, None), (4, None, None)],
    )
    assert result == [0, 1, 0, 1]


@pytest.mark.parametrize("kind", KINDS)
def test_table_state_must_be_a_dict(kind):
    table = Table("t", NoopDriver())
    with pytest.raises(TypeError, match="dict"):
        run(kind, [MapWithState(table, lambda b, s: (b, 7), group_by_key=True), _collect()], [(1, "a", None)])


@pytest.mark.parametrize("kind", KINDS)
def test_full_event_passes_and_expects_events(kind):
    seen = []

    def fn(event, state):
        seen.append((type(event).__name__, event.key))
        return Event(event.body * 10, key=f"new-{event.key}"), state + 1

    capture = Capture(id=True)
    run(kind, [MapWithState(0, fn, full_event=True), capture], [(1, "k", None), (2, "k", None)])
    assert seen == [("Event", "k"), ("Event", "k")]
    assert [(e["body"], e["key"], e["id"]) for e in capture.seen] == [
        (10, "new-k", None),
        (20, "new-k", None),
    ]
    capture = Capture()
    with pytest.raises(TypeError, match="Event"):
        run(
            kind,
            [MapWithState(0, lambda e, s: (e if e.body == 1 else e.body, s), full_event=True), capture],
            [1, 2, 3],
        )
    assert [e["body"] for e in capture.seen] == [1]


@pytest.mark.parametrize("kind", KINDS)
def test_what_fn_returns(kind):
    assert run(kind, [MapWithState(0, lambda b, s: (None, s + 1)), _collect()], [1, 2]) == [None, None]
    assert run(kind, [MapWithState(0, lambda b, s: [b * 10, s + 1]), _collect()], [1, 2]) == [10, 20]
    with pytest.raises(TypeError):
        run(kind, [MapWithState(0, lambda b, s: None), _collect()], [1])
    with pytest.raises(ValueError):
        run(kind, [MapWithState(0, lambda b, s: (b, s, 1)), _collect()], [1])


@pytest.mark.parametrize("kind", KINDS)
def test_a_raising_function_fails_the_flow_after_the_events_before_it(kind):
    capture = Capture()
    step = MapWithState(0, lambda b, s: ((b, s), s + 1 / (b - 3)))
    with pytest.raises(ZeroDivisionError):
        run(kind, [step, capture], [1, 2, 3, 4])
    assert [e["body"] for e in capture.seen] == [[1, 0], [2, -0.5]]
    assert step._state == -1.5


@pytest.mark.parametrize("kind", KINDS)
def test_global_state_carries_over_to_the_next_run(kind):
    # as in the reference: the step keeps the state it reached
    source = SOURCES[kind]()
    build_flow([source, MapWithState(0, lambda b, s: ((b, s), s + 1)), _collect()])
    assert run_source(kind, source, [1, 2]) == [(1, 0), (2, 1)]
    assert run_source(kind, source, [1, 2]) == [(1, 2), (2, 3)]


@pytest.mark.parametrize(
    "make",
    [
        lambda: MapWithState(0, lambda b, s: ((b["i"], s), s + b["i"])),
        lambda: MapWithState({"x": 0, "y": 0}, lambda b, s: ((b["i"], s), s + b["i"]), group_by_key=True),
        lambda: MapWithState(Table("t", NoopDriver()), _count_and_sum_i, group_by_key=True),
    ],
    ids=["global", "dict", "table"],
)
@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns"])
def test_state_spans_input_batches(make, columns):
    events = make_events([{"i": i, "v": i} for i in range(9)], keys=["xy"[i % 2] for i in range(9)])

    def outputs(sizes):
        (seen,), _ = run_steps([make(), EngineCapture()], events, sizes, columns=columns)
        return [encode(r[0]) for r in seen]

    one_by_one = outputs([1] * 9)
    assert outputs(None) == one_by_one
    assert outputs([4, 2, 3]) == one_by_one


def _count_and_sum_i(body, state):
    return _count_and_sum({"v": body["i"]}, state)


class _ReadTable(Flow):
    """Records, for each event, the state the table holds for its key (it shares the table)."""

    _takes_batches = True  # its _do takes EventBatches

    def __init__(self, table, **kwargs):
        super().__init__(**kwargs)
        self.table = table
        self.seen = []

    def _state_objects(self):
        return (self.table,)

    async def _do(self, batch):
        for key in batch.keys:
            self.seen.append(dict(self.table._get_static(key)))
        await self._emit(batch)


def test_steps_sharing_the_table_see_the_state_of_each_event_in_turn():
    table = Table("t", NoopDriver())
    reader = _ReadTable(table)
    events = make_events([{"v": v} for v in (1, 2, 3, 4)], keys=["a", "a", "b", "a"])
    run_steps([MapWithState(table, _count_and_sum, group_by_key=True), reader], events)
    assert reader.seen == [
        {"count": 1, "sum": 1},
        {"count": 2, "sum": 3},
        {"count": 1, "sum": 3},
        {"count": 3, "sum": 7},
    ]


@pytest.mark.parametrize(
    "args, kwargs, words",
    [
        ((0, None), {}, "fn"),
        ((0, 5), {}, "fn"),
        ((5, lambda b, s: (b, s)), {"group_by_key": True}, "initial_state"),
        (("table_name", lambda b, s: (b, s)), {"group_by_key": True}, "table 'table_name'.*no context"),
        ((None, lambda b, s: (b, s)), {"group_by_key": True}, "initial_state"),
    ],
)
def test_bad_parameters_raise_at_construction(args, kwargs, words):
    with pytest.raises(TypeError, match=words) as info:
        MapWithState(*args, name="stateful", **kwargs)
    assert "stateful" in str(info.value)
