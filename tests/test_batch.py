"""EventBatch, Columns and TimeStyle: the internal currency of a flow."""

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from storey import Event
from storey.core.batch import EventBatch, IdSequence
from storey.core.columns import Columns
from storey.core.times import NAIVE, UTC_DATETIME, TimeStyle, to_ns, to_ns_array

T = dt.datetime(2020, 7, 21, 21, 40, tzinfo=dt.UTC)
T_NS = 1595367600 * 10**9


def _columns():
    return Columns(
        {
            "v": np.array([1, 2, 3]),
            "x": np.array([0.5, 1.5, 2.5]),
            "s": np.array(["a", "b", "c"], dtype=object),
        },
        absent={"x": np.array([False, True, False])},
    )


def _batch(n=3):
    return EventBatch(
        n,
        bodies=[{"v": i} for i in range(n)],
        keys=[f"k{i}" for i in range(n)],
        time_values=[T + dt.timedelta(seconds=i) for i in range(n)],
        ids=[f"id{i}" for i in range(n)],
    )


# ---- times


def test_naive_datetimes_are_utc_whatever_the_machine_zone():
    # reference defect 5: the tests run in America/New_York (see conftest.py)
    assert to_ns(dt.datetime(2020, 7, 21, 21, 40)) == T_NS
    assert to_ns(T) == T_NS
    assert to_ns(T.astimezone(ZoneInfo("Asia/Tokyo"))) == T_NS
    assert to_ns(pd.Timestamp("2020-07-21 21:40")) == T_NS
    assert to_ns(pd.Timestamp("2020-07-21 23:40", tz="Europe/Berlin")) == T_NS
    assert to_ns(np.datetime64("2020-07-21T21:40")) == T_NS
    assert list(to_ns_array([T, T + dt.timedelta(microseconds=1)])) == [T_NS, T_NS + 1000]


def test_to_ns_rejects_what_is_not_a_time():
    with pytest.raises(TypeError, match="event time must be a datetime"):
        to_ns("2020-01-01")


def test_time_styles_give_back_the_objects_a_source_handed_out():
    ns = np.array([T_NS, T_NS + 1500], dtype=np.int64)
    assert NAIVE.values(ns) == [dt.datetime(2020, 7, 21, 21, 40), dt.datetime(2020, 7, 21, 21, 40, 0, 1)]
    assert UTC_DATETIME.values(ns)[0] == T and UTC_DATETIME.values(ns)[0].tzinfo is dt.UTC
    tokyo = TimeStyle(ZoneInfo("Asia/Tokyo")).values(ns)[0]
    assert tokyo == T and tokyo.utcoffset() == dt.timedelta(hours=9)
    stamps = TimeStyle(dt.UTC, pandas=True).values(ns)
    assert isinstance(stamps[0], pd.Timestamp) and stamps[1].value == T_NS + 1500


def test_batch_times_and_time_values_convert_both_ways():
    batch = EventBatch(1, bodies=[1], time_values=[T])
    assert list(batch.times) == [T_NS]
    batch = EventBatch(1, bodies=[1], times=np.array([T_NS]), time_style=UTC_DATETIME)
    assert batch.time_values == [T]


# ---- columns


def test_columns_to_rows_leaves_out_absent_fields_and_gives_python_scalars():
    rows = _columns().to_rows()
    assert rows == [{"v": 1, "x": 0.5, "s": "a"}, {"v": 2, "s": "b"}, {"v": 3, "x": 2.5, "s": "c"}]
    assert type(rows[0]["v"]) is int and type(rows[0]["x"]) is float
    assert Columns({}, n=2).to_rows() == [{}, {}]


def test_columns_take_select_with_columns_and_concat():
    cols = _columns()
    taken = cols.take(np.array([2, 1]))
    assert taken.to_rows() == [{"v": 3, "x": 2.5, "s": "c"}, {"v": 2, "s": "b"}]
    assert cols.take(np.array([True, False, True])).n == 2
    assert cols.select(["s"]).to_rows() == [{"s": "a"}, {"s": "b"}, {"s": "c"}]
    extended = cols.with_columns({"v": np.array([7, 8, 9]), "w": np.array([1, 1, 1])})
    assert extended.to_rows()[1] == {"v": 8, "s": "b", "w": 1}
    both = Columns.concat([cols, cols.take(np.array([0]))])
    assert both.n == 4 and both.to_rows()[3] == {"v": 1, "x": 0.5, "s": "a"}
    assert Columns.concat([cols, cols.select(["v"])]) is None


def test_column_converters_decide_row_values():
    cols = Columns({"t": np.array([T_NS])}, converters={"t": lambda col: UTC_DATETIME.values(col)})
    assert cols.to_rows() == [{"t": T}]
    assert cols.column_list("t") == [T]


def test_row_values_fill_in_for_absent_fields():
    cols = _columns()
    assert cols.row_values("x") == [0.5, None, 2.5]
    assert cols.row_values("x", missing="gap") == [0.5, "gap", 2.5]
    assert cols.row_values("nope") == [None, None, None]
    assert cols.row_values("v") == [1, 2, 3]


# ---- bodies


def test_bodies_built_from_columns_once_and_then_rows_are_the_truth():
    batch = EventBatch(3, columns=_columns())
    peeked = batch.bodies_to_read()
    assert batch.columns is not None
    assert batch.bodies_to_read() is peeked
    bodies = batch.bodies_to_change()
    assert bodies is peeked
    assert batch.columns is None
    bodies[0]["v"] = 100
    assert batch.bodies_to_change()[0]["v"] == 100


def test_field_reads_one_body_field_from_columns_or_rows():
    batch = EventBatch(3, columns=_columns())
    assert list(batch.field("v")) == [1, 2, 3]
    assert list(batch.field("x")) == [0.5, None, 2.5]
    assert list(batch.field("missing")) == [None, None, None]
    assert batch.columns is not None
    rows = EventBatch(2, bodies=[{"a": 1}, "not a dict"])
    assert list(rows.field("a")) == [1, None]


def test_a_batch_without_bodies_or_keys_has_nones():
    batch = EventBatch(2)
    assert batch.bodies_to_change() == [None, None]
    assert batch.keys == [None, None]
    assert batch.ids == [None, None]


# ---- derived batches


def test_take_and_slice_keep_every_field_in_step():
    batch = _batch(4)
    batch.awaitables = ["a0", None, "a2", None]
    batch.meta = [None, {"path": "/x"}, None, None]
    taken = batch.take([2, 0, 2])
    assert taken.bodies_to_change() == [{"v": 2}, {"v": 0}, {"v": 2}]
    assert taken.keys == ["k2", "k0", "k2"]
    assert taken.ids == ["id2", "id0", "id2"]
    assert taken.time_values == [T + dt.timedelta(seconds=2), T, T + dt.timedelta(seconds=2)]
    assert taken.awaitables == ["a2", "a0", "a2"]
    assert taken.meta == [None, None, None]
    assert batch.take([0, 1, 2, 3]) is batch
    sliced = batch.slice(3, 10)
    assert sliced.n == 1 and sliced.keys == ["k3"] and sliced.meta == [None]
    columnar = EventBatch(3, columns=_columns(), times=np.array([1, 2, 3]), time_style=NAIVE)
    part = columnar.take([1])
    assert part.columns is not None and part.bodies_to_read() == [{"v": 2, "s": "b"}]
    assert list(part.times) == [2]


def test_one_by_one_gives_every_field_of_each_event_in_order():
    batch = _batch(3)
    batch.awaitables = ["a0", None, "a2"]
    batch.meta = [None, {"path": "/x"}, None]
    ones = list(batch.one_by_one())
    assert [b.n for b in ones] == [1, 1, 1]
    for i, one in enumerate(ones):
        expected = batch.take([i])
        assert (
            one.bodies_to_change() == expected.bodies_to_change()
            and one.keys == expected.keys
            and one.ids == expected.ids
        )
        assert one.time_values == expected.time_values
        assert one.awaitables == expected.awaitables and one.meta == expected.meta
    columnar = EventBatch(3, columns=_columns(), times=np.array([1, 2, 3]), time_style=NAIVE)
    lazy = EventBatch(3, columns=_columns(), times=np.array([1, 2, 3]), time_style=NAIVE)
    lazy._ids = IdSequence().reserve(3)
    all_ids = lazy._ids.to_list()
    parts = list(lazy.one_by_one())
    assert [p.bodies_to_read()[0] for p in parts] == columnar.bodies_to_read()
    assert [list(p.times) for p in parts] == [[1], [2], [3]]
    assert [p.ids[0] for p in parts] == all_ids
    assert list(parts[0].one_by_one()) == [parts[0]]
    assert list(EventBatch.empty().one_by_one()) == []


def test_with_bodies_columns_keys_and_times():
    batch = _batch(2)
    assert batch.with_bodies(["a", "b"]).bodies_to_change() == ["a", "b"]
    picked = batch.with_bodies(["only"], indices=[1])
    assert (picked.n, picked.keys, picked.ids) == (1, ["k1"], ["id1"])
    first = batch.with_first_bodies(["one"])
    assert (first.n, first.bodies_to_change(), first.keys, first.ids) == (1, ["one"], ["k0"], ["id0"])
    assert batch.with_first_bodies(["a", "b"]).keys == ["k0", "k1"]
    cols = batch.with_columns(Columns({"c": np.array([1, 2])}))
    assert (
        cols.columns is not None
        and cols.keys == ["k0", "k1"]
        and cols.bodies_to_change() == [{"c": 1}, {"c": 2}]
    )
    assert batch.with_keys(["x", "y"]).keys == ["x", "y"]
    assert batch.keys == ["k0", "k1"]
    retimed = batch.with_times(times=np.array([0, 10**9]), time_style=UTC_DATETIME)
    assert retimed.time_values == [
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC),
    ]


def test_branch_copy_deep_copies_what_a_branch_may_change():
    batch = _batch(1).with_keys([["a", "b"]])
    batch.meta = [{"headers": {"h": 1}, "method": None, "path": "/", "content_type": None, "error": None}]
    batch.awaitables = [object()]
    copy = batch.branch_copy()
    copy.bodies_to_change()[0]["v"] = 99
    copy.keys[0].append("c")
    copy.meta[0]["headers"]["h"] = 2
    assert batch.bodies_to_change() == [{"v": 0}]
    assert batch.keys == [["a", "b"]]
    assert batch.meta[0]["headers"] == {"h": 1}
    assert copy.awaitables[0] is batch.awaitables[0]


def test_concat_of_row_and_column_batches():
    rows = _batch(2)
    cols = EventBatch(
        3, columns=_columns(), keys=["c0", "c1", "c2"], time_values=[T] * 3, ids=["x", "y", "z"]
    )
    both = EventBatch.concat([rows, EventBatch.empty(), cols])
    assert both.n == 5
    assert both.bodies_to_change()[1] == {"v": 1} and both.bodies_to_change()[3] == {"v": 2, "s": "b"}
    assert both.keys == ["k0", "k1", "c0", "c1", "c2"]
    assert both.ids[2] == "x"
    assert EventBatch.concat([]).n == 0
    assert EventBatch.concat([rows]) is rows
    fresh = EventBatch(
        3, columns=_columns(), keys=["c0", "c1", "c2"], time_values=[T] * 3, ids=["x", "y", "z"]
    )
    columnar = EventBatch.concat([fresh, fresh.take([0])])
    assert columnar.columns is not None and columnar.n == 4


# ---- events and ids


def test_event_views_and_from_events_round_trip():
    batch = _batch(2)
    batch.meta = [
        None,
        {"headers": {"h": 1}, "method": "POST", "path": "/p", "content_type": "t", "error": None},
    ]
    events = batch.events()
    assert [(e.body, e.key, e.time, e.id) for e in events] == [
        ({"v": 0}, "k0", T, "id0"),
        ({"v": 1}, "k1", T + dt.timedelta(seconds=1), "id1"),
    ]
    assert (events[0].path, events[1].headers, events[1].method) == ("/", {"h": 1}, "POST")
    events[1].key = "changed"
    rebuilt = EventBatch.from_events(events)
    assert rebuilt.keys == ["k0", "changed"]
    assert rebuilt.meta[0]["path"] == "/" and rebuilt.meta[1]["path"] == "/p"
    # the events are the objects they were made from, as long as their bodies are
    assert rebuilt.event(1) is events[1]
    assert rebuilt.awaitables is None
    event = Event("body", key="k", time=T, id="i")
    assert EventBatch.from_events([event]).event(0) == event


def test_generated_ids_are_unique_and_lazy():
    ids = IdSequence()
    lazy = ids.reserve(3)
    batch = EventBatch(3, bodies=[1, 2, 3], ids=lazy)
    listed = batch.ids
    assert len(set(listed)) == 3
    prefix = listed[0].rsplit("-", 1)[0]
    assert listed == [f"{prefix}-0000", f"{prefix}-0001", f"{prefix}-0002"]
    assert ids.next_id() == f"{prefix}-0003"
    # as in the reference, a new prefix every 1024 ids, the counter starting again at 0
    big = ids.reserve(3000).to_list()
    assert len(set(big)) == 3000
    assert big[1019] == f"{prefix}-1023" and big[1020].endswith("-0000")
    prefixes = [i.rsplit("-", 1)[0] for i in big]
    assert len(set(prefixes)) == 3 and prefixes[1020] == prefixes[2043] != prefixes[2044]
    assert ids.next_id().rsplit("-", 1)[0] == prefixes[-1]
    taken = EventBatch(3000, bodies=[None] * 3000, time_values=[T] * 3000, ids=ids.reserve(3000)).take(
        [0, 2999]
    )
    assert EventBatch.concat([taken, taken]).ids == taken.ids * 2
    pair = EventBatch(2, bodies=[1, 2], ids=ids.reserve(2))
    second = pair.take([1]).ids[0]
    assert pair.ids[1] == second


def test_len_and_repr():
    batch = _batch(2)
    assert len(batch) == 2
    assert repr(batch) == "EventBatch(n=2, rows=True, columns=False)"


def test_ids_reserved_one_at_a_time_continue_the_same_sequence():
    # a live flow reserves one id per awaited event: the same ids as reserving them together
    one_by_one, together = IdSequence(), IdSequence()
    one_by_one.reserve(1020)
    together.reserve(1020)
    singles = [one_by_one.reserve_one().to_list()[0] for _ in range(10)]
    singles.append(one_by_one.next_id())
    expected = together.reserve(11).to_list()
    assert [s.rsplit("-", 1)[1] for s in singles] == [e.rsplit("-", 1)[1] for e in expected]
    assert singles[3].endswith("-1023") and singles[4].endswith("-0000")
    prefixes = [s.rsplit("-", 1)[0] for s in singles]
    assert prefixes[0] == prefixes[3] != prefixes[4] == prefixes[-1]
    assert len(set(singles)) == 11
