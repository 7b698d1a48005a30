"""NoSqlTarget: stores columns of each event as its key's static attributes and passes events on."""

import datetime as dt

import numpy as np
import pytest

from storey import Context, Map, NoopDriver, Table
from storey.core.batch import EventBatch
from storey.core.columns import Columns
from storey.dtypes import Event
from storey.targets import NoSqlTarget
from tests.support.conformance import assert_matches, encode_event, input_events, load_case
from tests.support.engine import T0, Capture, make_events, run_batches, run_steps
from tests.support.step_runs import KINDS, run_collected


def _table(**kwargs):
    return Table("t", NoopDriver(), **kwargs)


@pytest.mark.parametrize("source", KINDS)
def test_conformance_passthrough(source):
    case = load_case("nosql_target_passthrough")
    table = _table()
    events = [Event(body, key=key, time=time) for body, key, time in input_events(case)]
    out = run_collected(source, [NoSqlTarget(table, columns=["v"])], events, full_event=True)
    assert_matches(case["expected"]["events"], [encode_event(e) for e in out])
    # the last value of each key is stored
    assert table._get_static("a") == {"v": 3}
    assert table._get_static("b") == {"v": 9}
    assert table._get_static("c") == {"v": 7}


@pytest.mark.parametrize("source", KINDS)
def test_listed_columns_renamed_and_merged_per_key(source):
    table = _table()
    items = [({"a": 1, "b": 2, "c": 0}, "k1"), ({"a": 3}, "k2"), ({"b": 5}, "k1")]
    out = run_collected(source, [NoSqlTarget(table, columns=["a", "x=b"])], items)
    assert out == [{"a": 1, "b": 2, "c": 0}, {"a": 3}, {"b": 5}]
    assert table._get_static("k1") == {"a": 1, "x": 5}
    assert table._get_static("k2") == {"a": 3}


@pytest.mark.parametrize("source", KINDS)
def test_metadata_columns(source):
    table = _table()
    time = dt.datetime(2021, 1, 1, 5, tzinfo=dt.UTC)
    items = [Event({"a": 1}, key="kk", id="my-id", time=time)]
    run_collected(source, [NoSqlTarget(table, columns=["$key", "t=$time", "$id", "k=$key", "$time"])], items)
    assert table._get_static("kk") == {"key": "kk", "t": time, "id": "my-id", "k": "kk", "time": time}


@pytest.mark.parametrize("source", KINDS)
def test_columns_inferred_from_the_first_event_only(source):
    table = _table()
    items = [({"a": 1, "b": 2}, "k1"), ({"a": 3, "c": 4}, "k2"), ({"b": 5}, "k1")]
    run_collected(source, [NoSqlTarget(table)], items)
    assert table._get_static("k1") == {"a": 1, "b": 5}
    assert table._get_static("k2") == {"a": 3}


def test_inferred_columns_join_the_listed_ones_sorted_as_written():
    # the reference sorts listed and inferred columns together by their text ('$key' first)
    table = _table()
    run_collected(
        "sync",
        [NoSqlTarget(table, columns=["x=b", "$key", "b"], infer_columns_from_data=True)],
        [({"b": 2, "a": 1}, "k")],
    )
    assert list(table._get_static("k").items()) == [("key", "k"), ("a", 1), ("b", 2), ("x", 2)]


def test_no_columns_and_no_inference_stores_empty_attributes():
    table = _table()
    run_collected("sync", [NoSqlTarget(table, infer_columns_from_data=False)], [({"a": 1}, "k")])
    assert table._get_static("k") == {}


def test_empty_first_event_infers_no_columns():
    table = _table()
    run_collected("sync", [NoSqlTarget(table)], [({}, "k1"), ({"a": 1}, "k2")])
    assert table._get_static("k2") == {}


def test_none_and_missing_values_keep_the_stored_value():
    table = _table()
    items = [({"a": 1, "b": 1}, "k"), ({"a": None, "b": 2}, "k"), ({"b": 3}, "k")]
    run_collected("sync", [NoSqlTarget(table, columns=["a", "b"])], items)
    assert table._get_static("k") == {"a": 1, "b": 3}


def test_key_forms():
    table = _table()
    items = [({"a": 1}, ["x", 1]), ({"a": 2}, 0), ({"a": 3}, "")]
    run_collected("sync", [NoSqlTarget(table, columns=["a"])], items)
    # a list key is stored in its joined form, as the reference stores it
    assert table._get_static(["x", 1]) == {"a": 1}
    assert table._get_static("x.1") == {"a": 1}
    assert table._get_static(0) == {"a": 2}
    assert table._get_static("") == {"a": 3}


def test_list_bodies_are_stored_as_they_are():
    table = _table()
    run_collected("sync", [NoSqlTarget(table, columns=["a"])], [([1, 2, 3], "k")])
    assert table._get_static("k") == [1, 2, 3]


def test_list_bodies_get_metadata_inserted_at_their_column():
    table = _table()
    out = run_collected("sync", [NoSqlTarget(table, columns=["a", "$key", "b"])], [([1, 2, 3], "k")])
    assert out == [[1, 2, 3]]
    assert table._get_static("k") == [1, "k", 2]


def test_other_bodies_without_columns_are_stored_as_they_are():
    table = _table()
    run_collected("sync", [NoSqlTarget(table)], [("hello", "k")])
    assert table._get_static("k") == "hello"


@pytest.mark.parametrize("source", KINDS)
def test_event_without_key_fails_the_flow_after_the_events_before_it(source):
    table = _table()
    seen = []
    steps = [NoSqlTarget(table, columns=["a"]), Map(lambda b: seen.append(b) or b)]
    with pytest.raises(ValueError, match="no key"):
        run_collected(source, steps, [({"a": 1}, "k1"), ({"a": 2}, None), ({"a": 3}, "k3")])
    assert seen == [{"a": 1}]
    assert table._get_static("k1") == {"a": 1}
    assert table._get_static("k3") is None


@pytest.mark.parametrize("body", [5, None, (1, 2)])
def test_body_that_is_neither_dict_nor_list_fails_with_columns(body):
    with pytest.raises(TypeError, match="dict or list"):
        run_collected("sync", [NoSqlTarget(_table(), columns=["a"])], [(body, "k")])


def test_list_body_cannot_be_inferred_from():
    with pytest.raises(TypeError, match="infer"):
        run_collected("sync", [NoSqlTarget(_table())], [([1, 2], "k")])


def test_table_by_name_from_context():
    table = _table()
    context = Context(initial_tables={"profiles": table})
    run_collected("sync", [NoSqlTarget("profiles", columns=["a"], context=context)], [({"a": 1}, "k")])
    assert table._get_static("k") == {"a": 1}


def test_bad_parameters():
    context = Context(initial_tables={"profiles": _table()})
    with pytest.raises(TypeError, match="NoSqlTarget.*context"):
        NoSqlTarget("profiles")
    with pytest.raises(ValueError, match="NoSqlTarget.*'other'"):
        NoSqlTarget("other", context=context)
    with pytest.raises(TypeError, match="NoSqlTarget: table"):
        NoSqlTarget(5)
    with pytest.raises(TypeError, match="NoSqlTarget: columns"):
        NoSqlTarget(_table(), columns=5)
    with pytest.raises(TypeError, match="NoSqlTarget: columns"):
        NoSqlTarget(_table(), columns=["a", 3])
    with pytest.raises(ValueError, match=r"NoSqlTarget: unknown metadata '\$foo'"):
        NoSqlTarget(_table(), columns=["$foo"])


def _stored(columns, sizes, column_bodies, **kwargs):
    table = _table()
    bodies = [{"a": i, "b": f"s{i}", "c": float(i) / 2} for i in range(7)]
    keys = ["k1", "k2", "k1", "k3", "k2", "k1", "k3"]
    captures, _ = run_steps(
        [NoSqlTarget(table, columns=columns, **kwargs), Capture()],
        make_events(bodies, keys),
        sizes=sizes,
        columns=column_bodies,
    )
    return table._static, captures[0]


@pytest.mark.parametrize("columns", [None, ["a", "y=b", "$key", "t=$time", "$id", "missing"]])
def test_column_bodies_and_any_batch_split_store_the_same(columns):
    expected = _stored(columns, None, False)
    assert expected[0]["k1"]["a"] == 5
    for sizes in ([1] * 7, [3, 4], [2, 2, 2]):
        for column_bodies in (False, True):
            assert _stored(columns, sizes, column_bodies) == expected


def test_columnar_first_event_with_absent_field_is_not_inferred():
    table = _table()
    columns = Columns({"a": np.array([1, 2]), "b": np.array([5, 6])}, absent={"b": np.array([True, False])})
    batch = EventBatch(2, columns=columns, keys=["k1", "k2"], time_values=[T0, T0], ids=["i1", "i2"])
    run_batches([NoSqlTarget(table)], [batch])
    assert table._static == {"k1": {"a": 1}, "k2": {"a": 2}}


def test_empty_columns_list_infers_them_as_no_list_does():
    table = _table()
    run_collected("sync", [NoSqlTarget(table, columns=[])], [({"a": 1, "b": 2}, "k")])
    assert table._get_static("k") == {"a": 1, "b": 2}
