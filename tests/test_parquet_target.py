import datetime as dt
import hashlib
import json
import os
import time

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storey import Map, SyncEmitSource, build_flow
from storey.core.batch import EventBatch
from storey.core.columns import Columns
from storey.targets import ParquetTarget
from tests.support.conformance import encode, frame_rows, input_events, load_case
from tests.support.engine import T0, run_batches
from tests.support.replay_runs import BatchLog
from tests.support.step_runs import KINDS, run, run_collected


def emit_all(steps, events, source="sync"):
    """Runs the steps behind an emit source on (body, key, time) triples; returns what came out."""
    if source == "sync":
        controller = build_flow([SyncEmitSource(), *steps]).run()
        for body, key, time_ in events:
            controller.emit(body, key=key, event_time=time_)
        controller.terminate()
        return controller.await_termination()
    import asyncio

    from storey import AsyncEmitSource

    async def main():
        controller = build_flow([AsyncEmitSource(), *steps]).run()
        for body, key, time_ in events:
            await controller.emit(body, key=key, event_time=time_)
        await controller.terminate()
        return await controller.await_termination()

    return asyncio.run(main())


def parquet_files(root):
    """Every file under root (hidden ones too) but the `_SUCCESS` marker of a complete directory."""
    out = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(f for f in out if f != "_SUCCESS")


def read_tree(root):
    """Per relative directory: number of files, schemas and sorted rows, in the cases' encoding."""
    dirs = {}
    for rel in parquet_files(root):
        table = pq.read_table(os.path.join(root, rel))
        d = dirs.setdefault(os.path.dirname(rel), {"files": 0, "schemas": [], "rows": []})
        d["files"] += 1
        schema = [[f.name, str(f.type)] for f in table.schema]
        if schema not in d["schemas"]:
            d["schemas"].append(schema)
        d["rows"].extend(encode(r) for r in table.to_pandas().to_dict(orient="records"))
    for d in dirs.values():
        d["rows"].sort(key=lambda r: json.dumps(r, sort_keys=True))
    return dirs


def schema_of(path):
    return [(f.name, str(f.type)) for f in pq.read_schema(path)]


# ---- the reference's recorded cases
@pytest.mark.parametrize("source", KINDS)
def test_conformance_partitioned_hash(tmp_path, source):
    case = load_case("parquet_target_partitioned_hash")
    events = input_events(case)
    events = [(b, k, T0 + dt.timedelta(hours=9 * i)) for i, (b, k, _) in enumerate(events)]
    target = ParquetTarget(
        str(tmp_path / "part"),
        partition_cols=[("$key", 4), "$year", "$month", "$day"],
        columns=["id", "v", "name"],
        max_events=3,
    )
    run(source, [target], events)
    assert read_tree(tmp_path / "part") == case["expected"]["tree"]


def test_conformance_field_partition(tmp_path):
    case = load_case("parquet_target_field_partition")
    target = ParquetTarget(
        str(tmp_path / "fp"),
        partition_cols=["name", "$date", "$hour"],
        columns=["id", "name", "v", "the_key=$key"],
    )
    run("sync", [target], input_events(case))
    assert read_tree(tmp_path / "fp") == case["expected"]["tree"]


def test_conformance_single_file_typed_writes_the_index_column(tmp_path):
    # reference defect 14: the reference drops the untyped index column; we write it, type inferred
    case = load_case("parquet_target_single_file_typed")
    path = str(tmp_path / "pq" / "out.parquet")
    columns = [
        ("id", "int"),
        ("v", "int32"),
        ("f", "float"),
        ("name", "str"),
        ("flag", "bool"),
        ("ts", "datetime"),
        ("when=$time", "datetime"),
    ]
    events = input_events(case)
    run("sync", [ParquetTarget(path, index_cols="event_key=$key", columns=columns)], events)
    expected_schema = [tuple(x) for x in case["expected"]["schema"]]
    assert schema_of(path) == expected_schema + [("event_key", "string")]
    frame = pd.read_parquet(path)
    assert list(frame.index) == [k for _, k, _ in events]
    assert frame.index.name == "event_key"
    expected = case["expected"]["frame"]["<DataFrame>"]
    assert [[encode(v) for v in row] for row in frame.itertuples(index=False, name=None)] == expected["rows"]


# ---- layout
def test_directory_path_is_partitioned_by_hashed_key_and_hour(tmp_path):
    events = [({"v": 1}, "k1", T0), ({"v": 2}, "k2", T0 + dt.timedelta(hours=1)), ({"v": 3}, None, T0)]
    run("sync", [ParquetTarget(str(tmp_path / "out"))], events)

    def bucket(text):
        return int(hashlib.sha1(text.encode()).hexdigest(), 16) % 256

    dirs = sorted(os.path.dirname(f) for f in parquet_files(tmp_path / "out"))
    assert dirs == sorted(
        [
            f"hash256_key={bucket('k1')}/year=2020/month=07/day=21/hour=21",
            f"hash256_key={bucket('k2')}/year=2020/month=07/day=21/hour=22",
            f"hash256_key={bucket('None')}/year=2020/month=07/day=21/hour=21",
        ]
    )
    for f in parquet_files(tmp_path / "out"):
        assert f.endswith(".parquet") and not os.path.basename(f).startswith(".")


def test_key_and_time_part_partitions(tmp_path):
    events = [
        ({"v": 1, "b": 1}, "k", T0 + dt.timedelta(seconds=7)),
        ({"v": 2, "b": None}, ["x", "y"], T0),
        ({"v": 3, "b": 1.5}, 5, T0),
    ]
    run("sync", [ParquetTarget(str(tmp_path), partition_cols=["$key", "$minute", "$second", "b"])], events)
    dirs = sorted(os.path.dirname(f) for f in parquet_files(tmp_path))
    assert dirs == [
        "key=5/minute=40/second=00/b=1.5",
        "key=k/minute=40/second=07/b=1",
        "key=x.y/minute=40/second=00/b=None",
    ]
    table = pq.read_table(tmp_path / "key=k/minute=40/second=07/b=1")
    assert table.column_names == ["v"]  # the partition field is not written again


def test_time_partitions_use_the_event_time_zone(tmp_path):
    tz = dt.timezone(dt.timedelta(hours=2))
    run(
        "sync",
        [ParquetTarget(str(tmp_path), partition_cols=["$date", "$hour"])],
        [({"v": 1}, "k", T0.astimezone(tz))],
    )
    assert [os.path.dirname(f) for f in parquet_files(tmp_path)] == ["date=2020-07-21/hour=23"]


def test_naive_times_are_utc_for_partitions(tmp_path):
    # reference defect 5: the reference reads naive times in the machine's zone (tests run in New York)
    run(
        "sync",
        [ParquetTarget(str(tmp_path), partition_cols=["$hour"])],
        [({"v": 1}, "k", dt.datetime(2020, 1, 1, 5))],
    )
    assert [os.path.dirname(f) for f in parquet_files(tmp_path)] == ["hour=05"]


def test_max_events_writes_a_file_each_time_a_partition_fills(tmp_path):
    events = [({"v": i}, "a" if i % 10 < 7 else "b", T0) for i in range(10)]
    run("sync", [ParquetTarget(str(tmp_path), partition_cols=["$key"], max_events=3)], events)
    files = parquet_files(tmp_path)
    assert sum(f.startswith("key=a/") for f in files) == 3  # 7 events: 3 + 3 + 1
    assert sum(f.startswith("key=b/") for f in files) == 1  # 3 events
    rows = sorted(v for f in files for v in pq.read_table(tmp_path / f).column("v").to_pylist())
    assert rows == list(range(10))


def test_directory_files_hold_at_most_10000_events_by_default(tmp_path):
    n = 25000
    batch = EventBatch(
        n,
        columns=Columns({"v": np.arange(n, dtype=np.int64)}),
        keys=["k"] * n,
        times=np.full(n, pd.Timestamp(T0).value, dtype=np.int64),
        time_style=__import__("storey.core.times", fromlist=["UTC_DATETIME"]).UTC_DATETIME,
        ids=[str(i) for i in range(n)],
    )
    run_batches([ParquetTarget(str(tmp_path), partition_cols=["$year"])], [batch])
    sizes = sorted(pq.read_metadata(tmp_path / f).num_rows for f in parquet_files(tmp_path))
    assert sizes == [5000, 10000, 10000]


def test_single_file_gets_all_events_even_with_max_events(tmp_path):
    # the reference rewrites the file at each write, keeping only the last events; we keep them all
    path = str(tmp_path / "one.parquet")
    run("sync", [ParquetTarget(path, max_events=2)], [({"v": i}, "k", T0) for i in range(5)])
    assert pq.read_table(path).column("v").to_pylist() == [0, 1, 2, 3, 4]
    assert parquet_files(tmp_path) == ["one.parquet"]


# ---- columns and types
def test_inferred_columns_are_sorted_and_typed_as_the_reference_writes_them(tmp_path):
    path = str(tmp_path / "t.parquet")
    events = [
        ({"s": "x", "i": 1, "f": 1.5, "n": None, "b": True, "t": dt.datetime(2020, 1, 1), "u": T0}, "k", T0),
        ({"s": None, "i": None, "f": 2.0, "n": None, "b": None, "t": None, "u": None, "extra": 1}, "k", T0),
    ]
    run("sync", [ParquetTarget(path)], events)
    assert schema_of(path) == [
        ("b", "bool"),
        ("f", "double"),
        ("i", "double"),  # an int column holding a null is written as float, as pandas does
        ("n", "null"),
        ("s", "string"),
        ("t", "timestamp[us]"),
        ("u", "timestamp[ns, tz=UTC]"),
    ]
    rows = pq.read_table(path).to_pylist()
    assert rows[0]["i"] == 1.0 and rows[1]["i"] is None and rows[1]["s"] is None


def test_each_file_is_typed_from_its_own_events(tmp_path):
    events = [({"a": 2.5, "b": 1}, "k1", T0), ({"a": 3, "b": None}, "k2", T0)]
    run("sync", [ParquetTarget(str(tmp_path), partition_cols=["$key"])], events)
    schemas = {os.path.dirname(f): schema_of(tmp_path / f) for f in parquet_files(tmp_path)}
    assert schemas == {"key=k1": [("a", "double"), ("b", "int64")], "key=k2": [("a", "int64"), ("b", "null")]}


def test_metadata_columns_and_renaming(tmp_path):
    path = str(tmp_path / "m.parquet")
    run("sync", [ParquetTarget(path, columns=["k=$key", "$time", "$id", "value=v"])], [({"v": 1}, "a", T0)])
    table = pq.read_table(path)
    assert table.column_names == ["k", "time", "id", "value"]
    row = table.to_pylist()[0]
    assert row["k"] == "a" and row["value"] == 1 and isinstance(row["id"], str) and row["id"]
    assert table.schema.field("time").type == pa.timestamp("ns", tz="UTC")
    assert row["time"] == T0


def test_index_cols_become_the_pandas_index(tmp_path):
    path = str(tmp_path / "i.parquet")
    run(
        "sync",
        [ParquetTarget(path, index_cols=["$key", "i"], columns=["s"])],
        [({"i": 1, "s": "x"}, "a", T0), ({"i": 2, "s": "y"}, "b", T0)],
    )
    frame = pd.read_parquet(path)
    assert list(frame.index.names) == ["key", "i"]
    assert list(frame.index) == [("a", 1), ("b", 2)]
    assert list(frame.columns) == ["s"]


def test_inferred_columns_leave_out_index_columns(tmp_path):
    path = str(tmp_path / "i.parquet")
    run("sync", [ParquetTarget(path, index_cols="s")], [({"i": 1, "s": "x"}, "a", T0)])
    assert pq.read_table(path).column_names == ["i", "s"]
    assert pd.read_parquet(path).index.name == "s"


def test_typed_columns_convert_values(tmp_path):
    path = str(tmp_path / "typed.parquet")
    columns = [
        ("i", "int"),
        ("i32", "int32"),
        ("f", "float"),
        ("f32", "float32"),
        ("s", "str"),
        ("b", "bool"),
    ]
    columns.append(("t", "datetime"))
    events = [
        (
            {"i": 1.0, "i32": 2, "f": 1, "f32": 0.5, "s": "5", "b": 1, "t": "2020-01-01T00:00:00+02:00"},
            "k",
            T0,
        ),
        ({}, "k", T0),
    ]
    run("sync", [ParquetTarget(path, columns=columns)], events)
    assert schema_of(path) == [
        ("i", "int64"),
        ("i32", "int32"),
        ("f", "double"),
        ("f32", "float"),
        ("s", "string"),
        ("b", "bool"),
        ("t", "timestamp[ns]"),
    ]
    rows = pq.read_table(path).to_pylist()
    assert rows[0] == {
        "i": 1,
        "i32": 2,
        "f": 1.0,
        "f32": 0.5,
        "s": "5",
        "b": True,
        "t": dt.datetime(2019, 12, 31, 22, 0),
    }
    assert set(rows[1].values()) == {None}


def test_list_bodies_fill_the_non_metadata_columns_in_order(tmp_path):
    path = str(tmp_path / "l.parquet")
    run(
        "sync",
        [ParquetTarget(path, columns=["$key", "a", "b"])],
        [([1, "x"], "k0", T0), ([2, "y"], "k1", T0)],
    )
    assert pq.read_table(path).to_pylist() == [
        {"key": "k0", "a": 1, "b": "x"},
        {"key": "k1", "a": 2, "b": "y"},
    ]


# ---- column bodies
def column_batch():
    from storey.core.times import UTC_DATETIME

    n = 4
    ns = pd.Timestamp(T0).value + np.arange(n, dtype=np.int64) * 3_600_000_000_000
    return EventBatch(
        n,
        columns=Columns(
            {
                "i": np.array([1, 2, 3, 4], dtype=np.int32),
                "f": np.array([1.5, np.nan, 2.5, 3.0], dtype=np.float32),
                "b": np.array([True, False, True, False]),
                "s": np.array(["x", None, "y,z", 'w"'], dtype=object),
                "m": np.array([1, 0, 2, 0], dtype=np.int64),
                "t": np.array(
                    ["2020-01-01T00:00:01.5", "NaT", "2020-01-02", "2020-01-03"], dtype="datetime64[ns]"
                ),
            },
            n,
            absent={"m": np.array([False, True, False, True])},
            converters={"t": lambda values: list(pd.DatetimeIndex(values))},
        ),
        keys=["a", "b", "a", "c"],
        times=ns,
        time_style=UTC_DATETIME,
        ids=[f"id{i}" for i in range(n)],
    )


def test_column_bodies_are_written_without_building_rows(tmp_path):
    path = str(tmp_path / "c.parquet")
    seen = BatchLog()
    run_batches(
        [ParquetTarget(path, columns=["$key", "$time", "i", "f", "b", "s", "m", "t"]), seen], [column_batch()]
    )
    assert seen.columnar == [True]
    assert schema_of(path) == [
        ("key", "string"),
        ("time", "timestamp[ns, tz=UTC]"),
        ("i", "int64"),
        ("f", "double"),
        ("b", "bool"),
        ("s", "string"),
        ("m", "double"),
        ("t", "timestamp[us]"),
    ]
    rows = pq.read_table(path).to_pylist()
    assert [r["f"] for r in rows] == [1.5, None, 2.5, 3.0]
    assert [r["s"] for r in rows] == ["x", None, "y,z", 'w"']
    assert [r["m"] for r in rows] == [1.0, None, 2.0, None]
    assert rows[0]["t"] == dt.datetime(2020, 1, 1, 0, 0, 1, 500000) and rows[1]["t"] is None
    assert rows[3]["time"] == T0 + dt.timedelta(hours=3)


def test_column_and_row_bodies_write_the_same_file(tmp_path):
    columns = ["$key", "$time", "i", "f", "b", "s", "m", "t"]
    run_batches([ParquetTarget(str(tmp_path / "c.parquet"), columns=columns)], [column_batch()])
    rows_batch = column_batch()
    rows_batch.bodies_to_change()  # noqa: B018 - hands the rows out: the columns are dropped
    run_batches([ParquetTarget(str(tmp_path / "r.parquet"), columns=columns)], [rows_batch])
    assert pq.read_table(tmp_path / "c.parquet").equals(pq.read_table(tmp_path / "r.parquet"))


def test_column_bodies_partitioned(tmp_path):
    run_batches(
        [ParquetTarget(str(tmp_path), partition_cols=["$key", "$hour"], columns=["i"])], [column_batch()]
    )
    tree = {
        os.path.dirname(f): pq.read_table(tmp_path / f).column("i").to_pylist()
        for f in parquet_files(tmp_path)
    }
    assert tree == {
        "key=a/hour=21": [1],
        "key=a/hour=23": [3],
        "key=b/hour=22": [2],
        "key=c/hour=00": [4],
    }


# ---- flushing, passing events on, storage
@pytest.mark.parametrize("source", KINDS)
def test_events_pass_downstream_unchanged(tmp_path, source):
    bodies = [{"v": 1, "w": [1]}, {"v": 2}]
    out = run_collected(source, [ParquetTarget(str(tmp_path / "x.parquet"))], bodies)
    assert out == bodies


def test_flush_after_seconds_writes_before_termination(tmp_path):
    controller = build_flow(
        [SyncEmitSource(), ParquetTarget(str(tmp_path), partition_cols=["$key"], timeout_secs=0.2)]
    ).run()
    controller.emit({"v": 1}, key="k", event_time=T0)
    deadline = time.monotonic() + 5
    while not parquet_files(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(parquet_files(tmp_path)) == 1
    controller.emit({"v": 2}, key="k", event_time=T0)
    controller.terminate()
    controller.await_termination()
    assert len(parquet_files(tmp_path)) == 2


def test_memory_filesystem_url():
    root = "memory://storey-tests/pq-target"
    run("sync", [ParquetTarget(root, partition_cols=["$key"])], [({"v": 1}, "a", T0), ({"v": 2}, "b", T0)])
    fs = fsspec.filesystem("memory")
    files = sorted(f for f in fs.find("/storey-tests/pq-target") if not f.endswith("/_SUCCESS"))
    assert [f.split("/")[-2] for f in files] == ["key=a", "key=b"]
    assert fs.exists("/storey-tests/pq-target/_SUCCESS")
    with fs.open(files[1], "rb") as f:
        assert pq.read_table(f).column("v").to_pylist() == [2]
    fs.rm("/storey-tests", recursive=True)


def test_failure_downstream_leaves_no_file(tmp_path):
    path = str(tmp_path / "f.parquet")

    def boom(body):
        if body["v"] == 2:
            raise RuntimeError("boom")
        return body

    controller = build_flow([SyncEmitSource(), ParquetTarget(path), Map(boom)]).run()
    for i in range(3):
        try:
            controller.emit({"v": i}, key="k", event_time=T0)
        except RuntimeError:
            break
    controller.terminate()
    with pytest.raises(RuntimeError):
        controller.await_termination()
    assert os.listdir(tmp_path) == []


def test_conversion_error_fails_the_flow_and_leaves_no_file(tmp_path):
    path = str(tmp_path / "bad.parquet")
    with pytest.raises(pa.ArrowException):
        run("sync", [ParquetTarget(path)], [({"v": 1}, "k", T0), ({"v": "x"}, "k", T0)])
    assert parquet_files(tmp_path) == []


# ---- parameters
@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"columns": ["$foo"]}, ValueError),
        ({"columns": [("a", "int8")]}, ValueError),
        ({"columns": [("a", "int"), "b"]}, ValueError),
        ({"columns": 5}, TypeError),
        ({"index_cols": 5}, TypeError),
        ({"partition_cols": ["$foo"]}, ValueError),
        ({"partition_cols": [("$year", 3)]}, ValueError),
        ({"partition_cols": [("$key", 0)]}, ValueError),
        ({"max_events": 0}, ValueError),
        ({"flush_after_seconds": -1}, ValueError),
        ({"flush_after_seconds": 1, "timeout_secs": 2}, ValueError),
        ({"storage_options": "x"}, TypeError),
    ],
)
def test_bad_parameters_raise_at_construction(tmp_path, kwargs, error):
    with pytest.raises(error, match="ParquetTarget"):
        ParquetTarget(str(tmp_path / "x"), **kwargs)


def test_no_events_no_file(tmp_path):
    run("sync", [ParquetTarget(str(tmp_path / "x.parquet"))], [])
    assert parquet_files(tmp_path) == []


# ---- round trips through the file sources
def _frame():
    return pd.DataFrame(
        {
            "k": ["a", "b", "a", "c"],
            "tz": pd.to_datetime(
                ["2020-01-01", "2020-01-02", None, "2020-01-04 05:06:07.000008"], utc=True, format="ISO8601"
            ),
            "tn": pd.to_datetime(
                ["2020-01-01 00:00:01.5", "2020-01-02 00:00:00.0", None, "2020-01-04 00:00:00.0"]
            ),
            "i": np.array([1, 2, 3, 4]),
            "f": [1.0, np.nan, 2.5, 3.0],
            "b": [True, False, True, False],
            "s": pd.Series(["x", None, "y,z", 'w"'], dtype=object),
        }
    )


def _rows(frame):
    # a missing text value is None, whichever pandas made the frame
    return [[encode(v) for v in row] for row in frame_rows(frame)]


def test_round_trip_through_parquet_source(tmp_path):
    from storey import DataframeSource, ParquetSource
    from storey.steps import ReduceToDataFrame

    df = _frame()
    path = str(tmp_path / "rt.parquet")
    build_flow([DataframeSource(df), ParquetTarget(path, columns=list(df.columns))]).run().await_termination()
    back = build_flow([ParquetSource(path), ReduceToDataFrame()]).run().await_termination()
    assert list(back.columns) == list(df.columns)
    assert _rows(back) == _rows(df)
    assert str(back["tz"].dt.tz) == "UTC" and back["tn"].dt.tz is None


def test_partitioned_directory_reads_back_through_parquet_source(tmp_path):
    from storey import DataframeSource, ParquetSource
    from storey.steps import ReduceToDataFrame

    df = _frame()
    root = str(tmp_path / "parts")
    steps = [
        DataframeSource(df, key_field="k"),
        ParquetTarget(root, partition_cols=["$key"], columns=["i", "f", "s"]),
    ]
    build_flow(steps).run().await_termination()
    back = build_flow([ParquetSource(root), ReduceToDataFrame()]).run().await_termination()
    got = sorted(_rows(back[["key", "i", "f", "s"]]), key=json.dumps)
    assert got == sorted(_rows(df[["k", "i", "f", "s"]]), key=json.dumps)


def test_single_file_written_in_parts_is_typed_from_all_its_events(tmp_path):
    path = str(tmp_path / "parts.parquet")
    events = [
        ({"v": 1, "s": None}, "k", T0),
        ({"v": 2, "s": None}, "k", T0),
        ({"v": None, "s": "x"}, "k", T0),
    ]
    run("sync", [ParquetTarget(path, max_events=2)], events)
    assert schema_of(path) == [("s", "string"), ("v", "double")]
    assert pq.read_table(path).to_pylist() == [
        {"s": None, "v": 1.0},
        {"s": None, "v": 2.0},
        {"s": "x", "v": None},
    ]
    assert parquet_files(tmp_path) == ["parts.parquet"]


def test_empty_columns_list_infers_them_as_no_list_does(tmp_path):
    path = str(tmp_path / "e.parquet")
    run("sync", [ParquetTarget(path, columns=[])], [({"b": 1, "a": 2}, "k", T0)])
    assert pq.read_table(path).column_names == ["a", "b"]
    path = str(tmp_path / "ei.parquet")
    run("sync", [ParquetTarget(path, columns=[], index_cols=["a"])], [({"b": 1, "a": 2}, "k", T0)])
    assert pd.read_parquet(path).reset_index().to_dict("records") == [{"a": 2, "b": 1}]
