"""Keys a table lets go of (past `max_keys_in_memory`, least recently used first, or because their
windows are all past) come back when a batch needs them with exactly the features they would have
had: saved and loaded again over a storage, packed and unpacked in memory."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import storey.table.aggregation_state as aggregation_state_module
import storey.table.key_cache as key_cache
from storey import NoopDriver, QueryByKey, Reduce, SyncEmitSource, Table, build_flow
from tests.support.drivers import MemoryDriver
from tests.support.restarts import AGGREGATOR_SETS, EVENT, T0, comparable, late_shuffled, run_live


def _query(table, keys, when):
    names = [
        "a_sum_1h",
        "a_count_20m",
        "a_max_1h",
        "f_sum_2h",
        "f_min_30m",
        "c_avg_1h",
        "g_max_2h",
        "h_last_1h",
    ]
    flow = build_flow(
        [SyncEmitSource(), QueryByKey(names, table), Reduce([], lambda acc, x: acc + [x])]
    ).run()
    for key in keys:
        flow.emit({"k": key}, key=key, event_time=when)
    flow.terminate()
    return flow.await_termination()


@pytest.mark.parametrize("storage", ["memory", "driver"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(EVENT, min_size=1, max_size=40),
    swaps=st.lists(st.integers(0, 39), max_size=6),
    aggregators=st.sampled_from(sorted(AGGREGATOR_SETS)),
    bound=st.integers(1, 3),
    buffer=st.integers(1, 6),
)
def test_keys_let_go_come_back_exactly(storage, events, swaps, aggregators, bound, buffer):
    events = late_shuffled(events, swaps)
    make = AGGREGATOR_SETS[aggregators]
    driver = NoopDriver() if storage == "memory" else MemoryDriver()
    bounded = Table("t", driver, max_keys_in_memory=bound)
    unbounded = Table("t", NoopDriver())
    assert comparable(run_live(bounded, events, make, buffer_size=buffer)) == comparable(
        run_live(unbounded, events, make, buffer_size=buffer)
    )
    # let go at the start of each batch: the last batch may add its own keys
    assert len(bounded._aggregation_state.slots) <= bound + buffer
    keys = sorted({event["k"] for event in events})
    when = T0 + dt.timedelta(hours=12)
    assert comparable(_query(bounded, keys, when)) == comparable(_query(unbounded, keys, when))


def test_keys_whose_windows_are_all_past_are_let_go_and_memory_follows(monkeypatch):
    monkeypatch.setattr(key_cache, "_IDLE_CHECK_EVERY", 1)
    monkeypatch.setattr(aggregation_state_module, "_COMPACT_FROM", 64)
    make = AGGREGATOR_SETS["sliding and fixed, max_value"]
    # 3000 keys, one event each, then, a day later, as many events again on 10 of them: every
    # other key's windows are past (keys are checked once as many events as keys were aggregated)
    early = [{"k": f"k{i}", "t": T0 + dt.timedelta(seconds=i), "v": i % 50, "w": i % 60} for i in range(3000)]
    late = [
        {"k": f"k{i % 10 * 300}", "t": T0 + dt.timedelta(days=1, seconds=i), "v": 1, "w": 2}
        for i in range(3300)
    ]
    table = Table("t", NoopDriver())
    out = run_live(table, early + late, make, buffer_size=256)
    state = table._aggregation_state
    assert len(state.slots) < 300 and state.capacity < 1024
    assert len(table._packed) > 2700
    # a key that comes back, and those never seen again, read as if they had stayed
    kept = Table("t", NoopDriver())
    assert comparable(out) == comparable(run_live(kept, early + late, make, buffer_size=256))
    keys = [f"k{i}" for i in range(0, 3000, 7)]
    when = T0 + dt.timedelta(days=1, hours=1)
    assert comparable(_query(table, keys, when)) == comparable(_query(kept, keys, when))


def test_over_a_storage_keys_let_go_are_saved_first_and_loaded_again():
    driver = MemoryDriver()
    table = Table("t", driver, max_keys_in_memory=2)
    make = AGGREGATOR_SETS["sliding, every aggregation"]
    events = [{"k": f"k{i % 5}", "t": T0 + dt.timedelta(minutes=i), "v": i} for i in range(40)]
    out = run_live(table, events, make, buffer_size=1)
    assert comparable(out) == comparable(run_live(Table("t", NoopDriver()), events, make, buffer_size=1))
    # the keys were saved before they were let go, and loaded again one batch each
    assert len(driver.saves) > 5
    assert sum(len(keys) for keys in driver.loads) > 20


def test_max_keys_in_memory_is_checked():
    with pytest.raises(ValueError, match="Table: max_keys_in_memory must be a positive int or None, got 0"):
        Table("t", NoopDriver(), max_keys_in_memory=0)
