"""V3ioDriver through the real v3io client against the V3IO emulator: static attributes, window
state in storey 1.0.6's item format (and ours beside it), every step that uses a table, restarts
that continue exactly, and faults."""

import asyncio
import datetime as dt
import itertools
import json
import random

import numpy as np
import pytest

from storey import (
    AggregateByKey,
    Complete,
    JoinWithTable,
    MapWithState,
    NoopDriver,
    NoSqlTarget,
    QueryByKey,
    Reduce,
    SyncEmitSource,
    Table,
    V3ioDriver,
    build_flow,
)
from storey.dtypes import V3ioError
from tests.support.restarts import (
    assert_restart_continues_exactly,
    restart_examples,
    run_live,
)
from tests.support.table_flows import emit_all
from tests.test_durable_state import T0, _sum_count

_names = itertools.count()


def fresh_path():
    return f"bigdata/features_{next(_names)}"


def driver(v3io, **kwargs):
    made = V3ioDriver(v3io.url, "key", **kwargs)
    made._backoff_secs = 0.01
    return made


def array(value):
    """The doubles of an array attribute as the emulator keeps it."""
    return value.values


def query(v3io, path, features, key, when):
    flow = build_flow(
        [SyncEmitSource(key_field="k"), QueryByKey(features, Table(path, driver(v3io))), Complete()]
    ).run()
    try:
        return flow.emit({"k": key}, event_time=when).await_result()
    finally:
        flow.terminate()
        flow.await_termination()


# ---- static attributes
def test_static_attributes_round_trip_as_typed_item_attributes(v3io_emulator):
    path = fresh_path()
    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)
    table = Table(path, driver(v3io_emulator), flush_interval_secs=None)
    bodies = [
        {"user": "ann", "age": np.int64(31), "score": 0.5, "vip": True, "seen": when, "raw": b"\x00\x01"},
        {"user": "bob", "age": 40, "city": "Oslo"},
        {"user": "ann", "city": "Rome"},
    ]
    columns = ["age", "score", "vip", "seen", "raw", "city"]
    emit_all([NoSqlTarget(table, columns=columns)], bodies, key_field="user")
    items = v3io_emulator.items(path)
    assert items["ann"]["age"] == 31 and items["ann"]["score"] == 0.5 and items["ann"]["vip"] is True
    assert items["ann"]["raw"] == b"\x00\x01" and items["ann"]["city"] == "Rome"
    assert (items["ann"]["seen"].secs, items["ann"]["seen"].nsecs) == (int(when.timestamp()), 0)
    # a new table over the same storage joins them back, datetimes as aware UTC datetimes
    out = emit_all(
        [JoinWithTable(Table(path, driver(v3io_emulator)), "user")], [{"user": "ann"}, {"user": "eve"}]
    )
    assert out == [
        {
            "user": "ann",
            "age": 31,
            "score": 0.5,
            "vip": True,
            "seen": when,
            "raw": b"\x00\x01",
            "city": "Rome",
        },
        {"user": "eve"},
    ]


def test_attributes_a_state_drops_are_removed_from_the_item(v3io_emulator):
    path = fresh_path()
    table = Table(path, driver(v3io_emulator), flush_interval_secs=None)

    def count_visits(body, state):
        state = {"visits": state.get("visits", 0) + 1}
        if body.get("note"):
            state["note"] = body["note"]
        return body, state

    emit_all([MapWithState(table, count_visits, group_by_key=True)], [{"note": "x"}, {}], keys=["u1", "u1"])
    assert v3io_emulator.items(path)["u1"] == {"visits": 2, "note": "x"}
    # a new flow continues from the stored state; list keys name items by their parts joined by '.'
    emit_all(
        [MapWithState(Table(path, driver(v3io_emulator)), count_visits, group_by_key=True)],
        [{}, {}],
        keys=["u1", ["eu", 7]],
    )
    assert v3io_emulator.items(path) == {"eu.7": {"visits": 1}, "u1": {"visits": 3, "note": "x"}}


# ---- window state
def test_window_state_is_kept_in_storey_1_0_6_item_format(v3io_emulator):
    path = fresh_path()
    events = [
        {"k": "a", "t": T0 + dt.timedelta(minutes=25), "v": 3},
        {"k": "a", "t": T0 + dt.timedelta(minutes=27), "v": 4},
        {"k": "a", "t": T0 + dt.timedelta(minutes=65), "v": 10},
    ]
    run_live(Table(path, driver(v3io_emulator)), events, _sum_count)
    item = v3io_emulator.items(path)["a"]
    # stretches of the largest window (1h), aligned to the epoch; 'a' even ones, 'b' odd ones
    hour = int(T0.timestamp()) // 3600
    assert hour % 2 == 0
    assert (item["_x_a"].secs, item["_x_b"].secs) == (hour * 3600, (hour + 1) * 3600)
    # six 10m buckets each: the first two events in bucket 2 of the first hour, the last in bucket 0
    # of the next
    assert array(item["aggr_x_sum_a"]) == [0, 0, 7.0, 0, 0, 0]
    assert array(item["aggr_x_count_a"]) == [0, 0, 2.0, 0, 0, 0]
    assert array(item["aggr_x_sum_b"]) == [10.0, 0, 0, 0, 0, 0]
    assert array(item["aggr_x_count_b"]) == [1.0, 0, 0, 0, 0, 0]
    assert set(item) == {
        "_x_a",
        "_x_b",
        "aggr_x_sum_a",
        "aggr_x_sum_b",
        "aggr_x_count_a",
        "aggr_x_count_b",
        "_x_state",
    }
    schema = json.loads(v3io_emulator.namespace.get_object(f"{path}/.schema")[0])
    entry = dict(schema["x"])
    assert entry.pop("storey")["windows"] == ["1h"]
    assert {**entry, "aggregates": sorted(entry["aggregates"])} == {
        "period_millis": 600000,
        "aggregates": ["count", "sum"],
        "window_type": "SlidingWindow",
        "max_window_millis": 3600000,
    }
    # what a new process reads back
    assert query(v3io_emulator, path, ["x_sum_1h", "x_count_1h"], "a", events[-1]["t"]) == {
        "k": "a",
        "x_sum_1h": 17.0,
        "x_count_1h": 3.0,
    }


def test_a_table_storey_aggregated_in_its_format_alone_is_continued(v3io_emulator):
    """An item with storey 1.0.6's arrays and no state of ours (as storey writes it) is read from
    the arrays."""
    path = fresh_path()
    events = [{"k": "a", "t": T0 + dt.timedelta(minutes=10 * i), "v": i} for i in range(12)]
    run_live(Table(path, driver(v3io_emulator)), events[:8], _sum_count)
    # drop our own state: what is left is what storey 1.0.6 writes
    v3io_emulator.namespace.update_item(f"{path}/a", {"UpdateExpression": "REMOVE _x_state"})
    schema = json.loads(v3io_emulator.namespace.get_object(f"{path}/.schema")[0])
    del schema["x"]["storey"]
    v3io_emulator.namespace.put_object(f"{path}/.schema", json.dumps(schema).encode())
    continued = run_live(Table(path, driver(v3io_emulator)), events[8:], _sum_count)
    assert continued == run_live(Table("memory", NoopDriver()), events, _sum_count)[8:]


def test_our_state_is_not_used_once_storey_changed_the_arrays(v3io_emulator):
    path = fresh_path()
    events = [{"k": "a", "t": T0 + dt.timedelta(minutes=10 * i), "v": 1} for i in range(3)]
    run_live(Table(path, driver(v3io_emulator)), events, _sum_count)
    # storey 1.0.6 adds a value of 100 to the latest bucket, as its update expressions do
    v3io_emulator.namespace.update_item(
        f"{path}/a",
        {"UpdateExpression": "aggr_x_sum_a[2]=aggr_x_sum_a[2]+100.0;aggr_x_count_a[2]=aggr_x_count_a[2]+1"},
    )
    assert query(v3io_emulator, path, ["x_sum_1h", "x_count_1h"], "a", events[-1]["t"]) == {
        "k": "a",
        "x_sum_1h": 103.0,
        "x_count_1h": 4.0,
    }


def test_an_aggregator_that_differs_from_the_stored_one_is_refused(v3io_emulator):
    path = fresh_path()
    events = [{"k": "a", "t": T0, "v": 1}]
    run_live(Table(path, driver(v3io_emulator)), events, _sum_count)
    with pytest.raises(
        ValueError, match=rf"Table '{path}': aggregator 'x' differs .*windows: stored \['1h'\]"
    ):
        run_live(Table(path, driver(v3io_emulator)), events, lambda: _sum_count(("2h",)))


def test_aggregates_storey_did_not_keep_are_refused(v3io_emulator):
    path = fresh_path()
    schema = {"x": {"period_millis": 600000, "aggregates": ["sum"], "window_type": "SlidingWindow"}}
    v3io_emulator.namespace.put_object(f"{path}/.schema", json.dumps(schema).encode())
    with pytest.raises(
        ValueError, match=r"aggregator 'x' needs the aggregates \['count'\], which storey 1.0.6 did not keep"
    ):
        run_live(Table(path, driver(v3io_emulator)), [{"k": "a", "t": T0, "v": 1}], _sum_count)
    schema["x"]["period_millis"] = 300000
    v3io_emulator.namespace.put_object(f"{path}/.schema", json.dumps(schema).encode())
    with pytest.raises(ValueError, match=r"period: stored 300000 ms, given 600000 ms"):
        run_live(Table(path, driver(v3io_emulator)), [{"k": "a", "t": T0, "v": 1}], _sum_count)


def test_every_step_over_one_table(v3io_emulator):
    """AggregateByKey and NoSqlTarget write one item per key; JoinWithTable and QueryByKey of a
    later flow read it."""
    path = fresh_path()
    table = Table(path, driver(v3io_emulator))
    bodies = [
        {"k": "a", "v": 1, "name": "A"},
        {"k": "b", "v": 5, "name": "B"},
        {"k": "a", "v": 2, "name": "A2"},
    ]
    flow = build_flow(
        [
            SyncEmitSource(key_field="k"),
            AggregateByKey(_sum_count(), table),
            NoSqlTarget(table, columns=["name"]),
            Reduce([], lambda acc, x: acc + [x]),
        ]
    ).run()
    for i, body in enumerate(bodies):
        flow.emit(body, event_time=T0 + dt.timedelta(minutes=i))
    flow.terminate()
    flow.await_termination()
    reader = Table(path, driver(v3io_emulator))
    flow = build_flow(
        [
            SyncEmitSource(key_field="k"),
            JoinWithTable(reader, "k"),
            QueryByKey(["x_sum_1h"], reader),
            Reduce([], lambda acc, x: acc + [x]),
        ]
    ).run()
    flow.emit({"k": "a"}, event_time=T0 + dt.timedelta(minutes=5))
    flow.emit({"k": "c"}, event_time=T0 + dt.timedelta(minutes=5))
    flow.terminate()
    assert flow.await_termination() == [{"k": "a", "name": "A2", "x_sum_1h": 3.0}, {"k": "c"}]


@restart_examples
def test_restart_continues_exactly(v3io_emulator, events, swaps, split, aggregators, policy, first_bulk):
    path = fresh_path()
    assert_restart_continues_exactly(
        lambda: Table(path, driver(v3io_emulator)), events, swaps, split, aggregators, policy, first_bulk
    )


# ---- faults
def _events(n, keys, seed=0):
    rng = random.Random(seed)
    return [
        {"k": f"k{rng.randrange(keys)}", "t": T0 + dt.timedelta(minutes=i), "v": rng.randrange(100)}
        for i in range(n)
    ]


@pytest.mark.parametrize("kind", ["drop", "drop_after", "error", "stall"])
def test_flushes_outlive_faults_for_a_while(v3io_emulator, kind, monkeypatch):
    path = fresh_path()
    # a stalled answer comes after the driver stopped waiting for it
    monkeypatch.setattr(V3ioDriver, "_request_timeout_secs", 0.05)
    events = _events(200, 20)
    # reads and writes of items fail three times each, at random points; the first read and the
    # first write of the schema object fail too
    faults = [
        v3io_emulator.inject(kind, operations=["PutItem"], times=3, probability=0.3, seed=7, seconds=0.2),
        v3io_emulator.inject(kind, operations=["GetItem"], times=3, probability=0.3, seed=8, seconds=0.2),
        v3io_emulator.inject(kind, operations=["GetObject", "PutObject"], times=2, seconds=0.2),
    ]
    table = Table(path, driver(v3io_emulator), flush_interval_secs=None)
    first = run_live(table, events[:120], _sum_count)
    second = run_live(Table(path, driver(v3io_emulator)), events[120:], _sum_count)
    assert first + second == run_live(Table("memory", NoopDriver()), events, _sum_count)
    assert [fault.fired for fault in faults] == [3, 3, 2]


def test_a_flush_past_the_budget_names_the_table_and_the_keys_not_written(v3io_emulator):
    path = fresh_path()
    events = _events(60, 10)
    storage = driver(v3io_emulator)
    storage._retries = 2
    table = Table(path, storage)
    run_live(table, events[:20], _sum_count)
    # from the 4th item written on, the platform answers 503 for good
    v3io_emulator.inject("error", operations=["PutItem"], after=3, times=None, status=503)
    with pytest.raises(
        V3ioError,
        match=rf"Table '{path}': could not save 10 keys .*: 7 of 10 keys were not written to table {path}: "
        r"Failed to save item '\w+' of table .*: status 503: .* \(tried 3 times\)",
    ):
        run_live(table, events[20:], _sum_count)
    # the keys stay to be written by the next flush, which writes them once the platform is back
    v3io_emulator.clear_faults()
    asyncio.run(table.close())
    expected = run_live(Table("memory", NoopDriver()), events, _sum_count)
    latest = {body["k"]: body for body in expected}
    for key, body in latest.items():
        assert (
            query(v3io_emulator, path, ["x_count_1h"], key, events[-1]["t"])["x_count_1h"]
            == body["x_count_1h"]
        )
