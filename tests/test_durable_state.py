"""Durable table state through the driver contract (storey.drivers), on a driver that keeps bytes
in memory: loads once per batch, flushes in batches, a failed flow's state saved, a changed
aggregator refused, and a restart that continues exactly where the first flow stopped."""

import asyncio
import datetime as dt
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storey import (
    AggregateByKey,
    Complete,
    FieldAggregator,
    JoinWithTable,
    Map,
    NoSqlTarget,
    QueryByKey,
    Reduce,
    SlidingWindows,
    SyncEmitSource,
    Table,
    build_flow,
)
from storey.core.batch import EventBatch
from storey.drivers import Driver
from storey.dtypes import Event
from tests.support.drivers import MemoryDriver, Store
from tests.support.engine import run_batches
from tests.support.restarts import (
    AGGREGATOR_SETS,
    EVENT,
    POLICIES,
    T0,
    assert_restart_continues_exactly,
    run_live,
)


def _sum_count(windows=("1h",)):
    return [FieldAggregator("x", "v", ["sum", "count"], SlidingWindows(list(windows), "10m"))]


def _batch(pairs):
    """An EventBatch of (key, minute) events with value 1."""
    return EventBatch.from_events(
        [Event({"v": 1}, key=key, time=T0 + dt.timedelta(minutes=minute)) for key, minute in pairs]
    )


def test_a_batch_loads_its_unknown_keys_in_one_call():
    driver = MemoryDriver()
    table = Table("t", driver)
    batches = [
        _batch([("a", 0), ("b", 1), ("a", 2), ("c", 3)]),
        _batch([("a", 4), ("d", 5)]),
        _batch([("b", 6)]),
    ]
    run_batches([AggregateByKey(_sum_count(), table), Reduce([], lambda acc, x: acc + [x])], batches)
    assert driver.loads == [["a", "b", "c"], ["d"]]
    assert driver.schema_loads == 1


def test_changed_keys_are_saved_in_one_call_at_termination():
    driver = MemoryDriver()
    table = Table("t", driver)
    batches = [_batch([("a", 0), ("b", 1)]), _batch([("a", 4), ("c", 5)])]
    run_batches([AggregateByKey(_sum_count(), table), Reduce([], lambda acc, x: acc + [x])], batches)
    assert len(driver.saves) == 1
    (rows,) = driver.saves[0].aggregations
    assert rows.name == "x" and sorted(rows.keys) == ["a", "b", "c"]
    # the description of the aggregator goes with its first state
    assert set(driver.saves[0].schema) == {"x"}
    assert driver.saves[0].schema["x"]["windows"] == ["1h"]


def test_flushes_while_a_live_flow_runs_save_only_what_changed():
    driver = MemoryDriver()
    table = Table("t", driver, flush_interval_secs=0.05)
    flow = build_flow([SyncEmitSource(), AggregateByKey(_sum_count(), table), Complete()]).run()
    flow.emit({"v": 1}, key="a", event_time=T0).await_result()
    flow.emit({"v": 1}, key="b", event_time=T0).await_result()
    deadline = time.monotonic() + 10
    while not driver.saves and time.monotonic() < deadline:
        time.sleep(0.01)
    flow.emit({"v": 2}, key="a", event_time=T0 + dt.timedelta(minutes=1)).await_result()
    flow.terminate()
    flow.await_termination()
    saved = [sorted(rows.keys) for changes in driver.saves for rows in changes.aggregations]
    assert saved == [["a", "b"], ["a"]]


def test_the_state_of_a_failed_flow_is_saved():
    store = Store()
    events = [{"k": "a", "t": T0 + dt.timedelta(minutes=i), "v": i} for i in range(6)]

    def fail_on_4(body):
        if body["v"] == 4:
            raise ValueError("bad event")
        return body

    flow = build_flow(
        [
            SyncEmitSource(key_field="k", time_field="t"),
            AggregateByKey(_sum_count(), Table("t", MemoryDriver(store))),
            Map(fail_on_4),
            Complete(),
        ]
    ).run()
    for body in events[:4]:
        flow.emit(dict(body)).await_result()
    with pytest.raises(ValueError, match="bad event"):
        flow.emit(dict(events[4])).await_result()
    flow.terminate()
    with pytest.raises(ValueError):
        flow.await_termination()
    # what was aggregated before the error (events 0..4) is what a new flow continues from
    after = run_live(Table("t", MemoryDriver(store)), events[5:], _sum_count)
    assert after == [{**events[5], "x_sum_1h": 15.0, "x_count_1h": 6.0}]


def test_a_changed_aggregator_is_refused_naming_the_table_and_the_difference():
    store = Store()
    run_live(Table("profiles", MemoryDriver(store)), [{"k": "a", "t": T0, "v": 1}], _sum_count)
    with pytest.raises(
        ValueError, match=r"Table 'profiles': aggregator 'x' .*windows: stored \['1h'\], given \['2h'\]"
    ):
        run_live(
            Table("profiles", MemoryDriver(store)), [{"k": "a", "t": T0, "v": 1}], lambda: _sum_count(["2h"])
        )


def test_a_new_aggregator_on_a_table_holding_others_starts_empty():
    store = Store()
    run_live(Table("t", MemoryDriver(store)), [{"k": "a", "t": T0, "v": 5}], _sum_count)

    def both():
        return [*_sum_count(), FieldAggregator("y", "v", ["max"], SlidingWindows(["1h"], "10m"))]

    out = run_live(Table("t", MemoryDriver(store)), [{"k": "a", "t": T0, "v": 1}], both)
    assert out == [{"k": "a", "t": T0, "v": 1, "x_sum_1h": 6.0, "x_count_1h": 2.0, "y_max_1h": 1.0}]


def test_a_transient_save_failure_is_tried_again():
    driver = MemoryDriver(fail_saves=2)
    driver._backoff_secs = 0.001
    run_live(Table("t", driver), [{"k": "a", "t": T0, "v": 5}], _sum_count)
    assert len(driver.saves) == 1


def test_a_save_that_keeps_failing_names_the_table_and_the_keys_and_keeps_them_for_the_next_flush():
    driver = MemoryDriver(fail_saves=10)
    driver._backoff_secs = 0.001
    table = Table("profiles", driver)
    with pytest.raises(
        ConnectionError, match=r"Table 'profiles': could not save 2 keys \('a', 'b'\).*tried 6 times"
    ):
        run_live(table, [{"k": "a", "t": T0, "v": 5}, {"k": "b", "t": T0, "v": 1}], _sum_count)
    driver.fail_saves = 0
    asyncio.run(table._flush())
    assert sorted(driver.saves[0].aggregations[0].keys) == ["a", "b"]


def test_a_permanent_save_failure_is_not_tried_again():
    driver = MemoryDriver(fail_saves=1, error=TypeError)
    with pytest.raises(TypeError, match="could not save 1 key \\('a'\\) to MemoryDriver: TypeError"):
        run_live(Table("t", driver), [{"k": "a", "t": T0, "v": 5}], _sum_count)
    assert driver.fail_saves == 0 and driver.saves == []


def test_query_join_and_nosql_share_the_loading_path():
    store = Store()
    run_live(Table("t", MemoryDriver(store)), [{"k": "a", "t": T0, "v": 5}], _sum_count)
    table = Table("t", MemoryDriver(store))
    flow = build_flow(
        [
            SyncEmitSource(key_field="k"),
            NoSqlTarget(table, columns=["name"]),
            JoinWithTable(table, "k", join_function=lambda body, attrs: {**body, "joined": dict(attrs)}),
            QueryByKey(["x_sum_1h", "name"], table),
            Reduce([], lambda acc, x: acc + [x]),
        ]
    ).run()
    flow.emit({"k": "a", "name": "ann"}, event_time=T0 + dt.timedelta(minutes=1))
    flow.terminate()
    assert flow.await_termination() == [{"k": "a", "name": "ann", "joined": {"name": "ann"}, "x_sum_1h": 5.0}]
    # one load brought both the attributes (none yet) and the window state of the key
    assert table._storage.loads == [["a"]]
    assert store.attributes[("t", "a")] == {"name": "ann"}


def test_query_by_key_in_another_process_reads_the_stored_aggregators():
    store = Store()
    events = [{"k": "a", "t": T0 + dt.timedelta(minutes=m), "v": m} for m in (0, 20, 50)]
    run_live(Table("t", MemoryDriver(store)), events, _sum_count)
    flow = build_flow(
        [
            SyncEmitSource(key_field="k"),
            QueryByKey(["x_sum_1h", "x_avg_1h"], Table("t", MemoryDriver(store))),
            Reduce([], lambda a, x: a + [x]),
        ]
    ).run()
    flow.emit({"k": "a"}, event_time=T0 + dt.timedelta(minutes=70))
    flow.emit({"k": "nobody"}, event_time=T0)
    flow.terminate()
    assert flow.await_termination() == [{"k": "a", "x_sum_1h": 70.0, "x_avg_1h": 35.0}, {"k": "nobody"}]


class LegacyDriver(Driver):
    """A driver written against storey 1.0.6's per-key hooks."""

    def __init__(self):
        self.calls = []
        self.items = {"k9": {"x": 99}}

    async def _save_key(self, container, table_path, key, aggr_item, partitioned_by_key, additional_data):
        self.calls.append(
            ("save", container, table_path, key, aggr_item, partitioned_by_key, dict(additional_data))
        )
        self.items.setdefault(key, {}).update(additional_data)

    async def _load_by_key(self, container, table_path, key, attributes):
        self.calls.append(("load", container, table_path, key, attributes))
        return self.items.get(key)


def test_a_driver_with_storey_1_0_6_hooks_gets_the_calls_the_reference_makes():
    # recorded from storey 1.0.6: NoSqlTarget(columns=['a']) over Table('/cont/path/tab', driver,
    # flush_interval_secs=None), events k1 {a:1,b:2}, k1 {a:3,b:4}, k2 {a:5}, each awaited (so
    # each is a batch of its own: ours writes through once per batch, with the key's latest values)
    driver = LegacyDriver()
    table = Table("/cont/path/tab", driver, flush_interval_secs=None)
    flow = build_flow([SyncEmitSource(key_field="k"), NoSqlTarget(table, columns=["a"]), Complete()]).run()
    for body in ({"k": "k1", "a": 1, "b": 2}, {"k": "k1", "a": 3, "b": 4}, {"k": "k2", "a": 5}):
        flow.emit(body).await_result()
    flow.terminate()
    flow.await_termination()
    assert driver.calls == [
        ("save", "cont", "/path/tab", "k1", None, True, {"a": 1}),
        ("save", "cont", "/path/tab", "k1", None, True, {"a": 3}),
        ("save", "cont", "/path/tab", "k2", None, True, {"a": 5}),
    ]
    driver.calls.clear()
    flow = build_flow(
        [
            SyncEmitSource(key_field="k"),
            JoinWithTable(Table("/cont/path/tab", driver), "k"),
            Reduce([], lambda a, x: a + [x]),
        ]
    ).run()
    flow.emit({"k": "k9"})
    flow.emit({"k": "k1"})
    flow.terminate()
    assert flow.await_termination() == [{"k": "k9", "x": 99}, {"k": "k1", "a": 3}]
    assert driver.calls == [
        ("load", "cont", "/path/tab", "k9", "*"),
        ("load", "cont", "/path/tab", "k1", "*"),
    ]


def test_a_driver_with_storey_1_0_6_aggregation_hooks_is_refused_when_the_step_is_built():
    class Aggregating(LegacyDriver):
        async def _load_aggregates_by_key(self, container, table_path, key):
            return None, None

    with pytest.raises(
        ValueError,
        match=r"AggregateByKey: Aggregating stores aggregation state through .*_load_aggregates_by_key",
    ):
        AggregateByKey(_sum_count(), Table("t", Aggregating()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(EVENT, min_size=1, max_size=40),
    swaps=st.lists(st.integers(0, 39), max_size=6),
    split=st.floats(0, 1),
    aggregators=st.sampled_from(sorted(AGGREGATOR_SETS)),
    policy=st.sampled_from(sorted(POLICIES)),
    buffers=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    first_bulk=st.booleans(),
)
def test_restart_continues_exactly(events, swaps, split, aggregators, policy, buffers, first_bulk):
    store = Store()
    assert_restart_continues_exactly(
        lambda: Table("t", MemoryDriver(store)),
        events,
        swaps,
        split,
        aggregators,
        policy,
        first_bulk,
        buffers,
    )
