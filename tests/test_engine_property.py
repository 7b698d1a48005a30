"""The engine property: a flow fed n events as one batch gives exactly what it gives when fed the
same events as n batches of one, or in any other split: the output of processing each event
through the whole flow before the next, as the reference does.

Each case below is a flow (a factory of fresh steps, with `Capture` steps recording what passes);
hypothesis draws the events and the batch sizes.
"""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storey import (
    Batch,
    Choice,
    Complete,
    Event,
    Extend,
    Filter,
    FlatMap,
    Flatten,
    ForEach,
    Map,
    MapClass,
    MapWithState,
    Partition,
    Reduce,
    ReduceToDataFrame,
    ReifyMetadata,
    Rename,
    SampleWindow,
    Table,
    ToDataFrame,
)
from storey.drivers import NoopDriver
from storey.steps import EmitPeriod, Recover
from tests.support.conformance import encode
from tests.support.engine import T0, Capture, make_events, run_steps


def _with_key(event, key):
    event.key = key
    return event


def _shift_time(event):
    event.time = event.time + dt.timedelta(minutes=event.body["v"])
    return event


def _raise_on_multiple_of_4(body):
    if body["v"] % 4 == 0:
        raise ValueError(f"bad {body['v']}")
    return body


class _KeepOdd(MapClass):
    def do(self, body):
        if body["v"] % 2 == 0:
            self.filter()
        return {**body, "odd": True}


def _join_flow():
    capture = Capture()
    left = Map(lambda b: {**b, "side": "left"})
    right = Map(lambda b: {**b, "side": "right"})
    left.to(capture)
    right.to(capture)
    return [[left], right]


def _mutating_branches():
    return [
        [Map(lambda b: (b.update(touched=True), b)[1]), Capture()],
        Map(lambda b: {**b, "copy": 1}),
        Capture(),
    ]


def _nested_branches():
    return [
        Map(lambda b: {**b, "a": 1}),
        [Filter(lambda b: b["v"] > 0), [Capture()], Map(lambda b: {**b, "pos": True}), Capture()],
        [FlatMap(lambda b: [b, b] if b["w"] % 2 else []), Capture()],
        Capture(),
    ]


def _choice():
    return [
        Choice(
            [
                (Capture(), lambda b: b["v"] < 0),
                (Map(lambda b: {**b, "big": 1}).to(Capture()), lambda b: b["v"] > 10),
            ],
            default=Capture(),
        )
    ]


def _running_total(body, state):
    state = state + body["v"]
    return {**body, "total": state}, state


def _per_key_count(body, state):
    state["n"] = state.get("n", 0) + 1
    return {**body, "n": state["n"]}, state


CASES = {
    "map": lambda: [Map(lambda b: {**b, "s": b["v"] * 2}), Capture()],
    "map_full_event": lambda: [
        Map(lambda e: _with_key(e, f"k{e.body['v'] % 3}"), full_event=True),
        Map(_shift_time, full_event=True),
        Capture(),
    ],
    "filter": lambda: [Filter(lambda b: b["v"] % 3 != 0), Capture()],
    "filter_full_event": lambda: [Filter(lambda e: e.key != "a", full_event=True), Capture()],
    "flatmap": lambda: [FlatMap(lambda b: [{**b, "c": c} for c in range(b["v"] % 3)]), Capture()],
    "flatmap_full_event": lambda: [
        FlatMap(lambda e: [e, Event({"dup": e.body["v"]}, key=e.key, time=T0, id="x")], full_event=True),
        Capture(),
    ],
    "flatten": lambda: [Map(lambda b: [b["v"], b["w"]][: b["w"] % 3]), Flatten(), Capture()],
    "extend": lambda: [Extend(lambda b: {"e": b["v"] + b["w"], "v": 0}), Capture()],
    "extend_full_event": lambda: [Extend(lambda e: {"k": str(e.key)}, full_event=True), Capture()],
    "foreach": lambda: [ForEach(lambda b: b.update(seen=True)), Capture()],
    "mapclass": lambda: [_KeepOdd(), Capture()],
    "complete": lambda: [Complete(), Capture()],
    "reduce": lambda: [Map(lambda b: b["v"]), Reduce([], lambda acc, v: acc + [v])],
    "reduce_full_event": lambda: [Reduce(0, lambda acc, e: acc + len(str(e.key)), full_event=True)],
    "branches_copy_events": _mutating_branches,
    "nested_branches": _nested_branches,
    "join": _join_flow,
    "recovery_step": lambda: [Map(_raise_on_multiple_of_4, recovery_step=Capture()), Capture()],
    "recover": lambda: [
        Recover({ValueError: Capture()}),
        Map(lambda b: {**b, "m": 1}),
        Map(_raise_on_multiple_of_4),
        Capture(),
    ],
    "long_running": lambda: [
        Map(lambda b: {**b, "lr": True}, long_running=True),
        Filter(lambda b: b["w"] != 0, long_running=True),
        Capture(),
    ],
    "choice": _choice,
    "partition": lambda: [Partition(lambda e: e.body["v"] > 0), Capture()],
    "batch": lambda: [Batch(3), Capture()],
    "batch_by_key": lambda: [Batch(2, key="$key"), Capture()],
    "batch_full_event": lambda: [Batch(full_event=True), Capture()],
    "sample_window": lambda: [SampleWindow(3), Capture()],
    "sample_window_last_by_key": lambda: [
        SampleWindow(2, EmitPeriod.LAST, emit_before_termination=True, key="$key"),
        Capture(),
    ],
    "reify_metadata": lambda: [ReifyMetadata(["key", "time", "id"]), Capture()],
    "rename": lambda: [Rename({"v": "value"}), Capture()],
    "to_dataframe": lambda: [Batch(4), ToDataFrame(), Capture()],
    "reduce_to_dataframe": lambda: [ReduceToDataFrame(insert_key_column_as="k", insert_time_column_as="t")],
    "map_with_state": lambda: [MapWithState(0, _running_total), Capture()],
    "map_with_state_by_key": lambda: [
        MapWithState(
            {"a": 0, "b": 0, "c": 0, None: 0, ("a", "b"): 0},
            lambda body, n: ({**body, "n": n + 1}, n + 1),
            group_by_key=True,
        ),
        Capture(),
    ],
    "map_with_state_table": lambda: [
        MapWithState(Table("t", NoopDriver()), _per_key_count, group_by_key=True),
        Capture(),
    ],
    "chain": lambda: [
        Map(lambda b: {**b, "x": b["v"] - b["w"]}),
        Filter(lambda b: b["x"] % 2 == 0),
        FlatMap(lambda b: [b, {**b, "again": True}] if b["v"] > 5 else [b]),
        Extend(lambda b: {"y": b["x"] * 10}),
        Capture(),
        Reduce(0, lambda acc, b: acc + b["y"]),
    ],
}

_keys = st.sampled_from(["a", "b", "c", None, ["a", "b"]])
_bodies = st.fixed_dictionaries({"v": st.integers(-20, 20), "w": st.integers(-5, 5)})


@st.composite
def _events_and_sizes(draw):
    n = draw(st.integers(0, 12))
    bodies = draw(st.lists(_bodies, min_size=n, max_size=n))
    keys = draw(st.lists(_keys, min_size=n, max_size=n))
    offsets = draw(st.lists(st.integers(-3600, 3600), min_size=n, max_size=n))
    times = [T0 + dt.timedelta(seconds=o) for o in offsets]
    sizes = draw(st.lists(st.integers(1, 5), max_size=n))
    columns = draw(st.booleans())
    return make_events(bodies, keys, times), sizes, columns


@pytest.mark.parametrize("case", sorted(CASES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_events_and_sizes())
def test_any_batch_split_gives_the_output_of_one_event_at_a_time(case, data):
    events, sizes, columns = data
    make_steps = CASES[case]

    def run(**kwargs):
        # encoded: DataFrames and namedtuples compare as plain data
        return encode(run_steps(make_steps(), events, **kwargs))

    one_at_a_time = run(sizes=[1] * len(events))
    assert run(columns=columns) == one_at_a_time
    assert run(sizes=sizes, columns=columns) == one_at_a_time


def test_capture_sees_events_in_depth_first_order_across_branches():
    # the property must be able to fail: a join sees both branches' copies of an event in turn
    events = make_events([{"v": 1, "w": 0}, {"v": 2, "w": 0}])
    (seen,), _ = run_steps(_join_flow(), events)
    assert [(body["v"], body["side"]) for body, *_ in seen] == [
        (1, "left"),
        (1, "right"),
        (2, "left"),
        (2, "right"),
    ]


def test_branches_get_copies_of_each_event():
    events = make_events([{"v": 1, "w": 0}])
    (touched, copied), _ = run_steps(_mutating_branches(), events)
    assert touched[0][0] == {"v": 1, "w": 0, "touched": True}
    assert copied[0][0] == {"v": 1, "w": 0, "copy": 1}
