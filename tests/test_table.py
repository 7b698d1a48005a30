"""Table: per-key static attributes held in memory, loaded from and flushed to its driver in
batches of keys."""

import asyncio
import time

import pytest

from storey import Flow, JoinWithTable, Map, NoopDriver, Reduce, Table
from storey.core.batch import EventBatch
from storey.drivers import Driver
from storey.drivers.driver import StoredKey
from storey.dtypes import Event
from storey.targets import NoSqlTarget
from tests.support.engine import T0, run_batches
from tests.support.step_runs import KINDS, run_collected


class RecordingDriver(Driver):
    """A driver keeping items in a dict and recording each batch call it gets."""

    def __init__(self, items=None, fail_saves=0):
        self.items = {key: dict(value) for key, value in (items or {}).items()}
        self.loads = []
        self.saves = []
        self.fail_saves = fail_saves
        self.closed = False

    def _load_keys(self, table, keys, aggregators):
        self.loads.append(list(keys))
        return {key: StoredKey(dict(self.items[key]), {}) for key in keys if key in self.items}

    def _save_keys(self, table, changes):
        if self.fail_saves:
            self.fail_saves -= 1
            raise ConnectionError("storage is down")
        self.saves.append(
            {key: (dict(attrs), set(removed)) for key, (attrs, removed) in changes.attributes.items()}
        )
        for key, (attrs, removed) in changes.attributes.items():
            item = self.items.setdefault(key, {})
            item.update(attrs)
            for name in removed:
                item.pop(name, None)

    async def close(self):
        self.closed = True


class OnTheLoop(Flow):
    """Passes events on; a flow holding it runs on its event loop, not inline."""

    _may_suspend = True


def on_loop(steps, flag):
    """`steps`, run on the flow's event loop when `flag`."""
    return [OnTheLoop(), *steps] if flag else steps


def test_static_attributes_in_memory():
    table = Table("t", NoopDriver())
    assert table._get_static("k") is None
    table._update_static("k", {"a": 1})
    table._update_static("k", {"b": 2, "a": 3})
    assert table._get_static("k") == {"a": 3, "b": 2}
    table._set_static("k", {"c": 1})
    assert table._get_static("k") == {"c": 1}
    table._set_static(["x", 1], {"d": 1})
    assert table._get_static(["x", 1]) == {"d": 1}
    assert table._get_static("x.1") == {"d": 1}


def test_noop_driver_keeps_nothing_to_flush():
    table = Table("t", NoopDriver())
    table._update_static("k", {"a": 1})
    asyncio.run(table._ensure_loaded(["k", "other"]))
    asyncio.run(table._flush())
    assert table._get_static("k") == {"a": 1}
    assert table._get_static("other") is None
    assert table._pending == {}


def test_bad_parameters():
    with pytest.raises(TypeError, match="Table: table_path"):
        Table(None, NoopDriver())
    with pytest.raises(TypeError, match="Table: storage"):
        Table("t", None)
    with pytest.raises(TypeError, match="Table: flush_interval_secs"):
        Table("t", NoopDriver(), flush_interval_secs="5")
    with pytest.raises(ValueError, match="Table: flush_interval_secs.*-1"):
        Table("t", NoopDriver(), flush_interval_secs=-1)
    with pytest.raises(ValueError, match="Table: max_updates_in_flight.*0"):
        Table("t", NoopDriver(), max_updates_in_flight=0)


def test_ensure_loaded_asks_the_driver_once_per_batch_for_unknown_keys():
    driver = RecordingDriver({"a": {"x": 1}, "b.1": {"x": 2}})
    table = Table("t", driver)

    asyncio.run(table._ensure_loaded(["a", ["b", 1], "a", "c", None]))
    assert driver.loads == [["a", "b.1", "c"]]
    assert table._get_static("a") == {"x": 1}
    assert table._get_static(["b", 1]) == {"x": 2}
    assert table._get_static("c") is None
    # loaded keys and keys known to be absent are not asked for again
    asyncio.run(table._ensure_loaded(["a", "c", "d"]))
    assert driver.loads == [["a", "b.1", "c"], ["d"]]


def test_writes_before_loading_win_over_stored_attributes():
    driver = RecordingDriver({"k": {"x": 1, "y": 1}})
    table = Table("t", driver)
    table._update_static("k", {"y": 2})
    asyncio.run(table._ensure_loaded(["k"]))
    assert table._get_static("k") == {"x": 1, "y": 2}


def test_flush_saves_changed_keys_in_one_call():
    driver = RecordingDriver({"k2": {"old": 1, "kept": 1}})
    table = Table("t", driver)
    table._update_static("k1", {"a": 1})
    table._update_static("k1", {"b": 2})
    asyncio.run(table._ensure_loaded(["k2"]))
    table._set_static("k2", {"kept": 2})
    asyncio.run(table._flush())
    assert driver.saves == [{"k1": ({"a": 1, "b": 2}, set()), "k2": ({"kept": 2}, {"old"})}]
    assert driver.items["k2"] == {"kept": 2}
    asyncio.run(table._flush())
    assert len(driver.saves) == 1


def test_failed_flush_keeps_changes_for_the_next_one():
    driver = RecordingDriver(fail_saves=1)
    table = Table("t", driver)
    table._update_static("k", {"a": 1})
    with pytest.raises(ConnectionError):
        asyncio.run(table._flush())
    table._update_static("k", {"b": 2})
    asyncio.run(table._flush())
    assert driver.items == {"k": {"a": 1, "b": 2}}


def test_persisting_table_needs_dict_attributes():
    table = Table("t", RecordingDriver())
    with pytest.raises(TypeError, match="must be a dict"):
        table._set_static("k", [1, 2])


def test_close_flushes_and_closes_the_driver():
    driver = RecordingDriver()
    table = Table("t", driver)
    table._update_static("k", {"a": 1})
    asyncio.run(table.close())
    assert driver.items == {"k": {"a": 1}}
    assert driver.closed


@pytest.mark.parametrize("source", KINDS)
@pytest.mark.parametrize("may_suspend", [False, True])
def test_flow_termination_flushes(source, may_suspend):
    driver = RecordingDriver()
    table = Table("t", driver)
    items = [({"a": i}, f"k{i % 3}") for i in range(7)]
    run_collected(source, on_loop([NoSqlTarget(table, columns=["a"])], may_suspend), items, buffer_size=3)
    # nothing is saved before termination (the flush interval is 5 minutes), all of it then
    assert len(driver.saves) == 1
    assert driver.items == {"k0": {"a": 6}, "k1": {"a": 4}, "k2": {"a": 5}}


@pytest.mark.parametrize("source", KINDS)
@pytest.mark.parametrize("may_suspend", [False, True])
@pytest.mark.parametrize("interval", [None, 0])
def test_no_flush_interval_writes_through_each_batch(source, may_suspend, interval):
    # the reference takes 0 as it takes None (flush every event)
    driver = RecordingDriver()
    table = Table("t", driver, flush_interval_secs=interval)
    saved_before = []
    steps = on_loop(
        [
            NoSqlTarget(table, columns=["a"]),
            Map(lambda body: saved_before.append(len(driver.saves)) or body),
        ],
        may_suspend,
    )
    run_collected(source, steps, [({"a": i}, "k") for i in range(3)], buffer_size=1)
    assert saved_before == [1, 2, 3]
    assert driver.items == {"k": {"a": 2}}


@pytest.mark.parametrize("may_suspend", [False, True])
def test_flush_interval_flushes_while_the_flow_runs(may_suspend):
    from storey import SyncEmitSource, build_flow

    driver = RecordingDriver()
    table = Table("t", driver, flush_interval_secs=0.05)
    controller = build_flow(
        [SyncEmitSource(), *on_loop([NoSqlTarget(table, columns=["a"])], may_suspend)]
    ).run()
    controller.emit({"a": 1}, key="k")
    deadline = time.monotonic() + 10
    while not driver.saves and time.monotonic() < deadline:
        time.sleep(0.01)
    assert driver.saves == [{"k": ({"a": 1}, set())}]
    controller.terminate()
    controller.await_termination()
    assert len(driver.saves) == 1


@pytest.mark.parametrize("source", KINDS)
@pytest.mark.parametrize("may_suspend", [False, True])
def test_join_loads_from_storage_once_per_batch(source, may_suspend):
    driver = RecordingDriver({"u1": {"name": "N1"}, "u2": {"name": "N2"}})
    table = Table("t", driver)
    items = [{"uid": uid} for uid in ["u1", "u2", "u3", "u1", "u2", "u3"]]
    # AsyncEmitSource awaits each emit: give the sync emitter the same single-event batches
    out = run_collected(source, on_loop([JoinWithTable(table, "uid")], may_suspend), items, buffer_size=1)
    assert out == [
        {"uid": "u1", "name": "N1"},
        {"uid": "u2", "name": "N2"},
        {"uid": "u3"},
        {"uid": "u1", "name": "N1"},
        {"uid": "u2", "name": "N2"},
        {"uid": "u3"},
    ]
    assert sorted(key for call in driver.loads for key in call) == ["u1", "u2", "u3"]


def test_steps_on_a_stored_table_run_inline():
    # drivers are called by the table (loads in the flow's thread, saves in a thread of their own),
    # so a live flow over a stored table is served in the emitting thread
    for table in (Table("t", RecordingDriver()), Table("t", NoopDriver())):
        assert not NoSqlTarget(table)._may_suspend
        assert not JoinWithTable(table, "k")._may_suspend


def test_table_outlives_its_flows():
    table = Table("t", NoopDriver())
    run_collected("sync", [NoSqlTarget(table, columns=["a"])], [({"a": 1}, "k")])
    run_collected("async", [NoSqlTarget(table, columns=["b"])], [({"b": 2}, "k")])
    assert run_collected("sync", [JoinWithTable(table, "id")], [{"id": "k"}]) == [{"id": "k", "a": 1, "b": 2}]


@pytest.mark.parametrize("source", [*KINDS, "one batch"])
def test_join_before_write_on_one_table_loads_each_batch_at_once(source):
    driver = RecordingDriver({"k1": {"v": -1}})
    table = Table("t", driver)
    items = [({"v": i, "id": f"k{i % 3}"}, f"k{i % 3}") for i in range(6)]
    join = JoinWithTable(table, "id", join_function=lambda body, attrs: {**body, "prev": attrs.get("v")})
    steps = [join, NoSqlTarget(table, columns=["v"])]
    if source == "one batch":
        batch = EventBatch.from_events([Event(body, key=key, time=T0) for body, key in items])
        out = run_batches([*steps, Reduce([], lambda acc, x: acc + [x])], [batch])
        # the engine passes the events to the join one at a time, but the keys load at once
        assert driver.loads == [["k0", "k1", "k2"]]
    else:
        out = run_collected(source, steps, items, buffer_size=6)
    assert [body["prev"] for body in out] == [None, -1, None, 0, 1, 2]
