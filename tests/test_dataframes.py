"""ToDataFrame and ReduceToDataFrame: DataFrames with the column types storey 1.0.6 produced."""

import asyncio
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from storey import Batch, Event, Map, Reduce, ReduceToDataFrame, ToDataFrame, build_flow
from storey.core.batch import EventBatch
from storey.core.columns import Columns
from storey.engine.runtime import FlowRuntime
from storey.flow import Flow
from tests.support.conformance import assert_matches, decode, decode_time, encode, input_events, load_case
from tests.support.engine import T0, make_events, run_steps
from tests.support.step_runs import KINDS, SOURCES, Capture, run, run_source


def _in_scenario_order(body):
    # the cases store bodies with sorted keys; the scenarios built them as {'i', 'v', 'tag'}
    return {name: body[name] for name in ("i", "v", "tag")}


def _case_events(case):
    return [
        Event(_in_scenario_order(decode(e["body"])), key=e["key"], time=decode_time(e["time"]), id=e["id"])
        for e in case["inputs"]["events"]
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_conformance_to_dataframe(kind):
    case = load_case("to_dataframe")
    indexed, selected = Capture(), Capture()
    source = SOURCES[kind]()
    build_flow(
        [
            source,
            [Batch(4), ToDataFrame(index="i"), indexed],
            [Batch(4), ToDataFrame(columns=["v", "tag"]), selected],
        ]
    )
    run_source(kind, source, [(_in_scenario_order(b), k, t) for b, k, t in input_events(case)])
    assert_matches(case["expected"], {"indexed": indexed.seen, "selected": selected.seen})


@pytest.mark.parametrize("kind", KINDS)
def test_conformance_reduce_to_dataframe(kind):
    case = load_case("reduce_to_dataframe")
    events = _case_events(case)
    full = run(
        kind,
        [
            ReduceToDataFrame(
                index="i",
                insert_key_column_as="the_key",
                insert_time_column_as="the_time",
                insert_id_column_as="the_id",
            )
        ],
        events,
    )
    columns_only = run(kind, [ReduceToDataFrame(columns=["v", "tag"])], _case_events(case))
    list_events = [
        Event([e.body["i"], e.body["v"]], key=e.key, time=e.time, id=e.id) for e in _case_events(case)
    ]
    list_bodies = run(kind, [ReduceToDataFrame(columns=["i", "v"], insert_key_column_as="k")], list_events)
    empty = run(kind, [ReduceToDataFrame()], [])
    actual = {"full": full, "columns_only": columns_only, "list_bodies": list_bodies, "empty": empty}
    assert_matches(case["expected"], {name: encode(frame) for name, frame in actual.items()})


def _dtypes(frame):
    return [str(t) for t in frame.dtypes]


def _cells(frame):
    return [
        ["<NaN>" if isinstance(v, float) and math.isnan(v) else v for v in row]
        for row in frame.values.tolist()
    ]


# bodies whose values pandas types in different ways
DTYPE_CASES = {
    "mixed": [{"a": 1, "b": 1.5, "s": "x"}, {"a": 2, "b": None, "s": None}],
    "missing_fields": [{"a": 1}, {"b": 2}],
    "strings_missing": [{"s": "x"}, {"t": "y"}],
    "int_none": [{"a": 1}, {"a": None}],
    "int_float": [{"a": 1}, {"a": 2.5}],
    "bool": [{"a": True}, {"a": False}],
    "nested": [{"a": {"x": 1}}, {"a": [1]}],
    "lists": [[1, "a"], [2, "b"]],
    "naive_times": [{"t": dt.datetime(2020, 1, 1)}, {"t": dt.datetime(2020, 1, 2)}],
    "aware_times": [{"t": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}, {"t": None}],
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(DTYPE_CASES))
def test_column_types_are_those_pandas_gives(kind, name):
    # the installed pandas decides: on pandas 3, text columns are `str`, with NaN for None
    bodies = DTYPE_CASES[name]
    expected = pd.DataFrame(bodies)
    reduced = run(kind, [ReduceToDataFrame()], bodies)
    pd.testing.assert_frame_equal(reduced, expected)
    frame = run(kind, [Batch(), ToDataFrame(), _first_body()], bodies)
    pd.testing.assert_frame_equal(frame, expected)


def _first_body():
    return Reduce(None, lambda acc, body: acc if acc is not None else body)


@pytest.mark.parametrize("kind", KINDS)
def test_metadata_columns(kind):
    events = [Event({"a": i}, key=k, time=t, id=f"id{i}") for i, (k, t) in enumerate([("x", T0), (None, T0)])]
    frame = run(kind, [ReduceToDataFrame(insert_key_column_as="k", insert_time_column_as="t")], events)
    expected = pd.DataFrame({"a": [0, 1]})
    expected["k"] = pd.Series(["x", None])
    expected["t"] = pd.Series([T0, T0])
    pd.testing.assert_frame_equal(frame, expected)
    events = [(1, 7, dt.datetime(2020, 1, 1)), (2, 8, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))]
    frame = run(
        kind, [ReduceToDataFrame(columns=["v"], insert_key_column_as="k", insert_time_column_as="t")], []
    )
    assert list(frame.columns) == ["v"]
    frame = run(
        kind,
        [ReduceToDataFrame(insert_key_column_as="k", insert_time_column_as="t")],
        [([b], k, t) for b, k, t in events],
    )
    assert list(frame.columns) == [0, "k", "t"]
    assert _dtypes(frame) == ["int64", "int64", "object"]
    # a metadata column named like a body field replaces it, in place
    frame = run(kind, [ReduceToDataFrame(insert_key_column_as="a")], [({"a": 1, "b": 2}, "K", None)])
    assert list(frame.columns) == ["a", "b"] and frame["a"].tolist() == ["K"]


@pytest.mark.parametrize("kind", KINDS)
def test_index_and_columns(kind):
    bodies = [{"a": 1, "b": 2.5, "s": "x"}, {"a": 2, "b": 3.5, "s": "y"}]
    frame = run(kind, [ReduceToDataFrame(index="a", columns=["a", "b"])], bodies)
    assert list(frame.columns) == ["b"] and frame.index.name == "a" and frame.index.tolist() == [1, 2]
    frame = run(kind, [ReduceToDataFrame(index="s")], bodies)
    assert frame.index.dtype == pd.Index(["x", "y"]).dtype and frame.index.tolist() == ["x", "y"]
    frame = run(kind, [ReduceToDataFrame(columns=["a", "zz"])], bodies)
    assert _dtypes(frame) == ["int64", "float64"] and _cells(frame) == [[1.0, "<NaN>"], [2.0, "<NaN>"]]
    frame = run(kind, [ReduceToDataFrame(columns=["x", "y"], index="x")], [[1, 2], [3, 4]])
    assert list(frame.columns) == ["y"] and frame.index.tolist() == [1, 3]
    frame = run(kind, [ReduceToDataFrame(columns=["a", "b"], index="a")], [])
    pd.testing.assert_frame_equal(frame, pd.DataFrame([], columns=["a", "b"]))


@pytest.mark.parametrize("kind", KINDS)
def test_reduce_errors(kind):
    with pytest.raises(KeyError):
        run(kind, [ReduceToDataFrame(index="zz")], [{"a": 1}])
    with pytest.raises(ValueError, match="columns"):
        run(kind, [ReduceToDataFrame(columns=["x"])], [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="dict or list"):
        run(kind, [ReduceToDataFrame()], [1, 2])
    with pytest.raises(ValueError, match="all dicts or all lists"):
        run(kind, [ReduceToDataFrame()], [{"a": 1}, [1, 2]])


def test_reduce_to_dataframe_is_terminal():
    with pytest.raises(ValueError, match="terminal"):
        build_flow([SOURCES["sync"](), ReduceToDataFrame(), Map(lambda x: x)])


@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns"])
def test_reduce_from_columns_gives_what_rows_give(columns):
    bodies = [{"i": i, "v": i * 0.5, "s": "abc"[i % 3]} for i in range(7)]
    events = make_events(bodies, keys=[f"k{i}" for i in range(7)])
    step = ReduceToDataFrame(index="i", insert_key_column_as="key", insert_id_column_as="id")
    _, frame = run_steps([step], events, [3, 4], columns=columns)
    _, expected = run_steps(
        [ReduceToDataFrame(index="i", insert_key_column_as="key", insert_id_column_as="id")], events, [1] * 7
    )
    assert encode(frame) == encode(expected)
    by_pandas = pd.DataFrame(bodies)
    by_pandas["key"] = pd.Series([f"k{i}" for i in range(7)])
    by_pandas["id"] = pd.Series([f"id-{i}" for i in range(7)])
    pd.testing.assert_frame_equal(frame, by_pandas.set_index("i"))


def test_reduce_from_columns_with_absent_values_and_narrow_types():
    class Entry(Flow):
        _legal_first_step = True

    entry = Entry()
    step = ReduceToDataFrame()
    entry.to(step)
    data = {
        "n": np.array([1, 2, 3], dtype=np.int32),
        "f": np.array([0.5, 1.5, 2.5], dtype=np.float32),
        "m": np.array([1, 0, 3], dtype=np.int64),
    }
    columns = Columns(data, 3, absent={"m": np.array([False, True, False])})
    batch = EventBatch(3, columns=columns, keys=[None] * 3, time_values=[T0] * 3, ids=["a", "b", "c"])

    async def main():
        runtime = FlowRuntime(entry)
        runtime._bind_loop()
        await runtime.source._emit(batch)
        return await entry._terminate()

    frame = asyncio.run(main())
    assert _dtypes(frame) == ["int64", "float64", "float64"]
    assert _cells(frame) == [[1.0, 0.5, 1.0], [2.0, 1.5, "<NaN>"], [3.0, 2.5, 3.0]]


@pytest.mark.parametrize("kind", KINDS)
def test_to_dataframe_keeps_the_event_metadata_and_uses_the_body_as_is(kind):
    capture = Capture(id=True)
    events = [Event({"a": [1, 2]}, key="k", time=T0, id="e1")]
    run(kind, [ToDataFrame(full_event=True), capture], events)
    ((seen),) = capture.seen
    assert (seen["key"], seen["id"]) == ("k", "e1")
    assert seen["body"]["<DataFrame>"]["rows"] == [[1], [2]]


@pytest.mark.parametrize("kind", KINDS)
def test_to_dataframe_fails_the_flow_after_the_events_before_it(kind):
    capture = Capture()
    with pytest.raises(KeyError):
        run(kind, [ToDataFrame(index="a"), capture], [[{"a": 1}], [{"b": 2}]])
    assert len(capture.seen) == 1
    with pytest.raises(ValueError):
        run(kind, [ToDataFrame(), capture], [{"a": 1}])


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: ToDataFrame(index=5, name="framer"), "index"),
        (lambda: ToDataFrame(columns="abc", name="framer"), "columns"),
        (lambda: ReduceToDataFrame(columns=5, name="framer"), "columns"),
        (lambda: ReduceToDataFrame(insert_key_column_as=1, name="framer"), "insert_key_column_as"),
        (lambda: ReduceToDataFrame(insert_time_column_as=1, name="framer"), "insert_time_column_as"),
        (lambda: ReduceToDataFrame(insert_id_column_as=1, name="framer"), "insert_id_column_as"),
    ],
)
def test_bad_parameters_raise_at_construction(make, words):
    with pytest.raises(TypeError, match=words) as info:
        make()
    assert "framer" in str(info.value)
