"""storey users' code runs unchanged: flows written as storey 1.0.6's users write them (custom
steps with `_do`, input_path/result_path, context hooks, mlrun's event objects, ...) give what
the reference gave, as recorded in tests/data/compat/ (see tests/support/compat_scenarios.py)."""

import hashlib
import json
import os
import pathlib
import time

import pandas as pd
import pytest

from storey import (
    Context,
    DataframeSource,
    Event,
    Filter,
    Flow,
    JoinWithTable,
    JoinWithV3IOTable,
    Map,
    MapWithState,
    NoopDriver,
    ParquetTarget,
    Reduce,
    SyncEmitSource,
    Table,
    V3ioError,
    build_flow,
)
from storey.dtypes import _termination_obj
from tests.support.compat_scenarios import SCENARIOS, run_scenario
from tests.support.conformance import assert_matches, encode, load_case
from tests.support.step_runs import run

CASES = pathlib.Path(__file__).parent / "data" / "compat"


def test_every_scenario_has_its_recorded_case():
    assert sorted(SCENARIOS) == sorted(p.stem for p in CASES.glob("*.json"))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_gives_what_the_reference_gave(name, tmp_path):
    case = load_case(name, CASES)
    _, inputs = SCENARIOS[name]
    # the case was recorded for these inputs
    assert case["inputs"] == json.loads(json.dumps(encode(inputs)))
    assert_matches(case["expected"], run_scenario(name, tmp_path))


# ---- where the reference crashes (on today's Python) or writes garbage: what it evidently meant


class _Response:
    def __init__(self, status_code, item=None):
        self.status_code = status_code
        self.body = b"" if item is None else repr(item).encode()
        self.output = type("Output", (), {"item": item})()


class _FakeStorage:
    """Answers `_get_item` as V3IO would, from a dict; records the requests."""

    def __init__(self, items, status=None):
        self.items = items
        self.status = status
        self.requests = []
        self.closed = False

    async def _get_item(self, container, table_path, key, attributes):
        self.requests.append((container, table_path, key, attributes))
        if self.status is not None:
            return _Response(self.status)
        item = self.items.get(key)
        return _Response(404) if item is None else _Response(200, item)

    async def close(self):
        self.closed = True


def _collected(steps, bodies, **source_kwargs):
    return run("sync", [*steps, Reduce([], lambda acc, body: acc + [body])], bodies, **source_kwargs)


def test_join_with_v3io_table_joins_found_items_and_drops_missing_ones():
    # storey 1.0.6's concurrent steps crash on Python >= 3.10 (defect 15)
    storage = _FakeStorage({"1": {"name": "one"}, "3": {"name": "three"}})
    step = JoinWithV3IOTable(
        storage,
        lambda body: body["k"],
        lambda body, item: {**body, **item},
        "/container/dir/table",
        attributes=["name"],
    )
    assert _collected([step], [{"k": 1}, {"k": 2}, {"k": 3}]) == [
        {"k": 1, "name": "one"},
        {"k": 3, "name": "three"},
    ]
    assert storage.requests == [("container", "/dir/table", str(k), ["name"]) for k in (1, 2, 3)]
    assert storage.closed
    failing = JoinWithV3IOTable(_FakeStorage({}, status=500), lambda b: b, lambda b, item: b, "c/t")
    with pytest.raises(V3ioError, match="500"):
        _collected([failing], [1])


def test_join_with_table_reads_input_path_and_writes_result_path():
    table = Table("t", NoopDriver())
    table["2"] = {"extra": "x"}
    bodies = [{"a": {"b": 1}}, {"a": {"b": 2}}]
    # the default join updates the value at input_path, which is then written at result_path
    step = JoinWithTable(table, lambda a: str(a["b"]), input_path="a", result_path="joined")
    joined = _collected([step], bodies)
    assert joined == [
        {"a": {"b": 1}, "joined": {"b": 1}},
        {"a": {"b": 2, "extra": "x"}, "joined": {"b": 2, "extra": "x"}},
    ]
    step = JoinWithTable(
        table, lambda a: str(a["b"]), input_path="a", join_function=lambda a, found: found.get("extra")
    )
    assert _collected([step], bodies) == ["x"]  # None drops the event
    with pytest.raises(TypeError, match="input_path"):
        _collected([JoinWithTable(table, "k", input_path="a")], [5])


def test_parquet_list_bodies_with_index_and_partition_columns(tmp_path):
    # storey 1.0.6 takes the partition value from the index column's place and deletes the wrong
    # item; a list body holds the index columns' values, then the columns' (partition included)
    root = tmp_path / "out"
    target = ParquetTarget(
        str(root), columns=["my_int", "my_string"], partition_cols=["my_int"], index_cols="idx"
    )
    run("sync", [target], [[f"i{i}", i % 2, f"s{i}"] for i in range(4)])
    frame = pd.read_parquet(root)
    assert sorted(os.listdir(root)) == ["_SUCCESS", "my_int=0", "my_int=1"]
    rows = sorted(zip(frame.index, frame["my_string"], frame["my_int"].astype(int), strict=True))
    assert rows == [("i0", "s0", 0), ("i1", "s1", 1), ("i2", "s2", 0), ("i3", "s3", 1)]


def test_parquet_list_bodies_with_a_hashed_partition_column(tmp_path):
    # storey 1.0.6 raises KeyError: the column is hashed from its place in the list, and kept
    root = tmp_path / "out"
    run(
        "sync",
        [ParquetTarget(str(root), columns=["v", "s"], partition_cols=[("v", 4)])],
        [[i, f"s{i}"] for i in range(6)],
    )
    frame = pd.read_parquet(root)
    buckets = {int(hashlib.sha1(str(v).encode()).hexdigest(), 16) % 4 for v in range(6)}
    assert sorted(os.listdir(root)) == sorted(["_SUCCESS", *(f"hash4_v={b}" for b in buckets)])
    assert sorted(frame["v"]) == list(range(6))
    for v, bucket in zip(frame["v"], frame["hash4_v"].astype(int), strict=True):
        assert int(hashlib.sha1(str(v).encode()).hexdigest(), 16) % 4 == bucket


def test_parquet_list_bodies_need_their_partition_column_among_columns(tmp_path):
    with pytest.raises(KeyError, match="ParquetTarget.*'p'"):
        run("sync", [ParquetTarget(str(tmp_path), columns=["v"], partition_cols=["p"])], [[1]])


def test_map_with_state_takes_a_table_name_from_the_context():
    # storey 1.0.6 looks up only names starting with v3io:// (others fail at the first event)
    table = Table("states", NoopDriver())
    step = MapWithState(
        "states",
        lambda b, s: (b + len(s), {**s, b: 1}),
        group_by_key=True,
        context=Context(initial_tables={"states": table}),
    )
    assert _collected([step], [(1, "k", None), (2, "k", None)]) == [1, 3]
    assert table["k"] == {1: 1, 2: 1}
    with pytest.raises(ValueError, match="no table named 'other'"):
        MapWithState("other", lambda b, s: (b, s), group_by_key=True, context=Context())
    # without group_by_key, a string is a state like any other
    assert _collected([MapWithState("states", lambda b, s: (s, s))], [1]) == ["states"]


# ---- the engine hands a storey-style step its events one at a time


class _Seen(Flow):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    async def _do(self, event):
        if event is _termination_obj:
            return await self._do_downstream(event)
        self.seen.append(event)
        await self._do_downstream(event)


def test_a_per_event_step_gets_event_objects_from_a_bulk_source():
    frame = pd.DataFrame({"k": ["a", "b"] * 500, "v": range(1000)})
    seen = _Seen()
    result = (
        build_flow([DataframeSource(frame, key_field="k"), seen, Reduce(0, lambda acc, b: acc + b["v"])])
        .run()
        .await_termination()
    )
    assert result == sum(range(1000))
    assert all(type(e) is Event for e in seen.seen) and [e.body["v"] for e in seen.seen] == list(range(1000))
    assert [e.key for e in seen.seen[:3]] == ["a", "b", "a"]


def test_a_per_event_step_with_a_batch_step_after_it_keeps_event_order():
    seen = _Seen()
    out = _collected(
        [Map(lambda x: x * 2), seen, Filter(lambda x: x % 3), Map(lambda x: x + 1)], list(range(20))
    )
    assert out == [x * 2 + 1 for x in range(20) if (x * 2) % 3]
    assert [e.body for e in seen.seen] == [x * 2 for x in range(20)]


class _Terminations(Flow):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.terminations = 0

    async def _do(self, event):
        if event is _termination_obj:
            self.terminations += 1
            return self.terminations
        return None


def test_a_step_with_two_inlets_is_terminated_once():
    # storey 1.0.6 terminates it once per inlet (later storey versions once)
    step = _Terminations()
    source = SyncEmitSource()
    left, right = Map(lambda x: x), Map(lambda x: x)
    source.to(left)
    source.to(right)
    left.to(step)
    right.to(step)
    controller = source.run()
    controller.emit(1)
    controller.terminate()
    assert controller.await_termination() == 1
    assert step.terminations == 1


def test_a_single_file_flushed_by_time_keeps_every_event(tmp_path):
    # storey 1.0.6 rewrites the file at each flush and keeps only the last events
    path = tmp_path / "one.parquet"
    controller = build_flow([SyncEmitSource(), ParquetTarget(str(path), flush_after_seconds=0.2)]).run()
    controller.emit({"v": 1})
    time.sleep(0.6)
    controller.emit({"v": 2})
    controller.terminate()
    controller.await_termination()
    assert pd.read_parquet(path)["v"].tolist() == [1, 2]
