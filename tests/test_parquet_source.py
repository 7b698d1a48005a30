"""ParquetSource: files, lists and partitioned directories read in record batches."""

import datetime as dt
import math
import os

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storey import Event, Map, ParquetSource, ParquetTarget, build_flow
from storey.core.columns import Columns
from tests.support.conformance import assert_matches, load_case
from tests.support.replay_runs import MODES, BatchLog, encoded, frame, run_flow


@pytest.mark.parametrize("mode", MODES)
def test_conformance_columns(tmp_path, mode):
    case = load_case("parquet_source_columns")
    path = tmp_path / "in.parquet"
    frame(case["inputs"]["dataframe"]).to_parquet(path)
    events, _ = run_flow(
        ParquetSource(str(path), columns=["k", "t", "v"], key_field="k", time_field="t"), mode=mode
    )
    assert_matches(case["expected"]["events"], encoded(events))


@pytest.mark.parametrize("mode", MODES)
def test_conformance_time_filter(tmp_path, mode):
    case = load_case("parquet_source_time_filter")
    root = tmp_path / "ds"
    frame(case["inputs"]["dataframe"]).to_parquet(root, partition_cols=["year", "month", "day", "hour"])
    source = ParquetSource(
        str(root),
        start_filter=dt.datetime(2020, 7, 22, 6, 0),
        end_filter=dt.datetime(2020, 7, 23, 10, 0),
        filter_column="t",
        key_field="k",
        time_field="t",
    )
    events, _ = run_flow(source, mode=mode)
    got = sorted(encoded(events), key=lambda e: (e["time"], e["body"]["s"]))
    assert_matches(case["expected"]["events"], got)


def test_row_values_are_what_pandas_reads(tmp_path):
    table = pa.table(
        {
            "i": pa.array([1, None, 3], pa.int64()),
            "i2": pa.array([1, 2, 3], pa.int32()),
            "f": pa.array([1.5, None, float("nan")]),
            "b": pa.array([True, None, False]),
            "s": pa.array(["x", None, "z"]),
            "ts": pa.array([0, None, 2_000_000_000], pa.timestamp("ns")),
            "tsz": pa.array([0, 1_000, 2_000], pa.timestamp("ms", tz="Asia/Tokyo")),
            "d": pa.array([0, 1, None], pa.date32()),
            "l": pa.array([[1, 2], None, []], pa.list_(pa.int64())),
            "dic": pa.array(["a", "b", None]).dictionary_encode(),
            "bin": pa.array([b"a", None, b"c"]),
        }
    )
    path = tmp_path / "types.parquet"
    pq.write_table(table, path)
    events, _ = run_flow(ParquetSource(str(path)))
    first, second, third = (e.body for e in events)
    assert list(first) == table.column_names
    assert first["i"] == 1.0 and type(first["i"]) is float and math.isnan(second["i"])
    assert type(first["i2"]) is int
    assert math.isnan(second["f"]) and math.isnan(third["f"])
    assert first["b"] is True and second["b"] is None
    assert first["s"] == "x" and second["s"] is None
    assert first["ts"] == pd.Timestamp(0) and second["ts"] is pd.NaT
    assert first["tsz"] == pd.Timestamp(0, tz="UTC") and str(first["tsz"].tz) == "Asia/Tokyo"
    assert first["d"] == dt.date(1970, 1, 1) and third["d"] is None
    assert first["l"].tolist() == [1, 2] and second["l"] is None
    assert first["dic"] == "a" and math.isnan(third["dic"])
    assert first["bin"] == b"a" and second["bin"] is None


def test_an_int_column_with_a_null_anywhere_is_read_as_floats(tmp_path):
    path = tmp_path / "groups.parquet"
    pq.write_table(
        pa.table({"i": pa.array([1, 2, 3, None]), "j": pa.array([1, 2, 3, 4])}), path, row_group_size=2
    )
    events, _ = run_flow(ParquetSource(str(path)))
    assert [type(e.body["i"]) for e in events] == [float] * 4
    assert [type(e.body["j"]) for e in events] == [int] * 4
    # with a filter, only the rows read count: the null is filtered out here
    table = pa.table({"t": pa.array([0, 1, 2, 3], pa.timestamp("s")), "i": pa.array([1, 2, 3, None])})
    pq.write_table(table, path, row_group_size=2)
    events, _ = run_flow(
        ParquetSource(
            str(path),
            start_filter=dt.datetime(1969, 1, 1),
            end_filter=dt.datetime(1970, 1, 1, 0, 0, 2),
            filter_column="t",
        )
    )
    assert [e.body["i"] for e in events] == [1, 2, 3] and type(events[0].body["i"]) is int


def test_pandas_metadata_keeps_named_indexes_and_nullable_dtypes(tmp_path):
    df = pd.DataFrame(
        {"a": [1, 2], "n": pd.array([1, None], dtype="Int64"), "s": pd.array(["x", None], dtype="string")},
        index=pd.Index([5, 6], name="ix"),
    )
    path = tmp_path / "meta.parquet"
    df.to_parquet(path)
    events, _ = run_flow(ParquetSource(str(path)))
    assert list(events[0].body) == ["a", "n", "s", "ix"]
    assert events[0].body["ix"] == 5 and type(events[0].body["n"]) is np.int64
    assert events[1].body["n"] is pd.NA and events[1].body["s"] is pd.NA
    events, _ = run_flow(ParquetSource(str(path), columns=["a"]))
    assert [e.body for e in events] == [{"a": 1, "ix": 5}, {"a": 2, "ix": 6}]
    pd.DataFrame({"a": [1, 2]}, index=[7, 8]).to_parquet(path)
    events, _ = run_flow(ParquetSource(str(path)))
    assert [e.body for e in events] == [{"a": 1}, {"a": 2}]


def test_a_directory_is_read_in_path_order_with_the_first_files_schema(tmp_path):
    for name, v in [("b.parquet", 2), ("a.parquet", 1), ("c10.parquet", 10), ("c9.parquet", 9)]:
        pd.DataFrame({"v": [v]}).to_parquet(tmp_path / name)
    pd.DataFrame({"v": [11], "w": ["x"]}).to_parquet(tmp_path / "d.parquet")
    events, _ = run_flow(ParquetSource(str(tmp_path)))
    assert [e.body for e in events] == [{"v": 1}, {"v": 2}, {"v": 10}, {"v": 9}, {"v": 11}]


def test_a_list_of_paths_is_read_in_order_each_with_its_own_columns(tmp_path):
    pd.DataFrame({"v": [1]}).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame({"v": [2], "w": ["x"]}).to_parquet(tmp_path / "b.parquet")
    events, _ = run_flow(ParquetSource([str(tmp_path / "b.parquet"), str(tmp_path / "a.parquet")]))
    assert [e.body for e in events] == [{"v": 2, "w": "x"}, {"v": 1}]


def test_partition_columns_come_back_as_fields(tmp_path):
    df = pd.DataFrame({"k": ["b", "a", "b"], "v": [0, 1, 2]})
    df.to_parquet(tmp_path / "ds", partition_cols=["k"])
    events, _ = run_flow(ParquetSource(str(tmp_path / "ds"), key_field="k"))
    assert [(e.key, e.body) for e in events] == [
        ("a", {"v": 1, "k": "a"}),
        ("b", {"v": 0, "k": "b"}),
        ("b", {"v": 2, "k": "b"}),
    ]
    events, _ = run_flow(ParquetSource(str(tmp_path / "ds"), columns=["v"]))
    assert [e.body for e in events] == [{"v": 1}, {"v": 0}, {"v": 2}]


def _hours(tz=None):
    times = pd.to_datetime(["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 02:00", "2020-01-01 03:00"])
    # the same instants whatever the zone (naive times are UTC)
    return pd.DataFrame(
        {"t": times if tz is None else times.tz_localize("UTC").tz_convert(tz), "v": range(4)}
    )


@pytest.mark.parametrize("tz", [None, "UTC", "Asia/Tokyo"])
@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (dt.datetime(2020, 1, 1, 1), dt.datetime(2020, 1, 1, 2), [2]),
        (dt.datetime(2020, 1, 1, 1), None, [2, 3]),
        (None, dt.datetime(2020, 1, 1, 2), [0, 1, 2]),
        (dt.datetime(2020, 1, 1, 1, tzinfo=dt.UTC), dt.datetime(2020, 1, 1, 3, tzinfo=dt.UTC), [2, 3]),
        (pd.Timestamp("2020-01-01 02:00:00+02:00"), pd.Timestamp("2020-01-01 02:00"), [1, 2]),
        (dt.datetime(2020, 1, 1, 3), dt.datetime(2020, 1, 1, 1), []),
    ],
)
def test_time_filter_is_start_exclusive_end_inclusive_and_naive_means_utc(tmp_path, tz, start, end, expected):
    # the reference crashes with only one bound, or with an aware bound against a naive column
    path = tmp_path / "hours.parquet"
    _hours(tz).to_parquet(path)
    events, _ = run_flow(ParquetSource(str(path), start_filter=start, end_filter=end, filter_column="t"))
    assert [e.body["v"] for e in events] == expected


def test_partition_pruning_follows_the_partition_values(tmp_path):
    df = _hours()
    df["year"], df["month"], df["day"], df["hour"] = 2020, 1, 1, 5
    df.to_parquet(tmp_path / "ds", partition_cols=["year", "month", "day", "hour"])
    source = ParquetSource(
        str(tmp_path / "ds"),
        start_filter=dt.datetime(2020, 1, 1, 1),
        end_filter=dt.datetime(2020, 1, 1, 3),
        filter_column="t",
    )
    # as in the reference: the rows are in range but their partition (hour=5) is not
    events, _ = run_flow(source)
    assert events == []


def test_filters_need_a_filter_column_of_timestamps(tmp_path):
    with pytest.raises(TypeError, match="filter_column"):
        ParquetSource("x.parquet", start_filter=dt.datetime(2020, 1, 1))
    path = tmp_path / "hours.parquet"
    _hours().to_parquet(path)
    with pytest.raises(ValueError, match="'zz'"):
        run_flow(ParquetSource(str(path), end_filter=dt.datetime(2020, 1, 1), filter_column="zz"))
    with pytest.raises(TypeError, match="'v'.*int64"):
        run_flow(ParquetSource(str(path), end_filter=dt.datetime(2020, 1, 1), filter_column="v"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"paths": 5},
        {"paths": "x", "columns": [1]},
        {"paths": "x", "start_filter": "2020-01-01", "filter_column": "t"},
        {"paths": "x", "filter_column": 3},
        {"paths": "x", "storage_options": "a"},
    ],
)
def test_bad_parameters_fail_at_construction(kwargs):
    with pytest.raises(TypeError, match="ParquetSource"):
        ParquetSource(**kwargs)


def test_a_missing_file_names_it_and_the_failed_run_writes_nothing(tmp_path):
    good = tmp_path / "good.parquet"
    pd.DataFrame({"v": [1, 2]}).to_parquet(good)
    missing = tmp_path / "missing.parquet"
    out = tmp_path / "out.parquet"
    flow = build_flow([ParquetSource([str(good), str(missing)]), ParquetTarget(str(out))])
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        flow.run().await_termination()
    assert sorted(os.listdir(tmp_path)) == ["good.parquet"]


def test_an_unreadable_file_is_a_value_error_naming_it(tmp_path):
    path = tmp_path / "garbage.parquet"
    path.write_text("hello")
    with pytest.raises(ValueError, match="garbage.parquet"):
        run_flow(ParquetSource(str(path)))


def test_missing_columns_and_fields_name_the_field_and_file(tmp_path):
    path = tmp_path / "in.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(path)
    with pytest.raises(ValueError, match="'zz'.*in.parquet"):
        run_flow(ParquetSource(str(path), columns=["a", "zz"]))
    with pytest.raises(KeyError, match="key_field 'k'.*in.parquet"):
        run_flow(ParquetSource(str(path), key_field="k"))
    with pytest.raises(KeyError, match="time_field 't'"):
        run_flow(ParquetSource(str(path), columns=["a"], time_field="t"))


def test_columns_empty_and_empty_directories_give_no_events(tmp_path):
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "a.parquet")
    assert run_flow(ParquetSource(str(tmp_path / "a.parquet"), columns=[]))[0] == []
    (tmp_path / "empty").mkdir()
    assert run_flow(ParquetSource(str(tmp_path / "empty")))[0] == []


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_paths_may_be_fsspec_urls(tmp_path, scheme):
    df = pd.DataFrame({"k": ["a", "b"], "v": [1, 2]})
    if scheme == "memory":
        url = "memory://src-tests/in.parquet"
        with fsspec.open(url, "wb") as f:
            df.to_parquet(f)
    else:
        url = f"file://{tmp_path}/in.parquet"
        df.to_parquet(tmp_path / "in.parquet")
    events, _ = run_flow(ParquetSource(url, key_field="k"))
    assert [(e.key, e.body) for e in events] == [("a", {"k": "a", "v": 1}), ("b", {"k": "b", "v": 2})]


def test_batches_are_bounded(tmp_path):
    from storey.sources.file_sources.dataframe_source import BATCH_ROWS

    n = 2 * BATCH_ROWS + 13_000
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"i": np.arange(n)}), path, row_group_size=BATCH_ROWS + 20_000)
    log = BatchLog()
    build_flow([ParquetSource(str(path)), log]).run().await_termination()
    assert sum(log.sizes) == n and max(log.sizes) <= BATCH_ROWS and len(log.sizes) >= 3


def test_parquet_to_parquet_builds_no_per_row_python_objects(tmp_path, monkeypatch):
    n = 1_000_000
    rng = np.random.default_rng(1)
    table = pa.table(
        {
            "k": pa.array(rng.choice(["alice", "bob", "carol"], n)),
            "t": pa.array(np.arange(n, dtype=np.int64) * 1_000_000_000, pa.timestamp("ns", tz="UTC")),
            "v": rng.integers(0, 100, n),
            "w": rng.random(n),
        }
    )
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(table, src)
    counts = {"rows": 0, "events": 0, "views": 0}

    def counting(name, original):
        def wrapper(self, *args, **kwargs):
            counts[name] += 1
            return original(self, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(Columns, "to_rows", counting("rows", Columns.to_rows))
    monkeypatch.setattr(Event, "__init__", counting("events", Event.__init__))
    from storey.core.batch import EventBatch

    monkeypatch.setattr(EventBatch, "event", counting("views", EventBatch.event))
    build_flow([ParquetSource(str(src), time_field="t"), ParquetTarget(str(out))]).run().await_termination()
    assert counts == {"rows": 0, "events": 0, "views": 0}
    written = pq.read_table(out)
    assert written.num_rows == n
    for name in table.column_names:
        assert written.column(name).equals(table.column(name))


def test_map_sees_each_row_once_and_changes_reach_the_target(tmp_path):
    path, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pd.DataFrame({"v": [1, 2, 3]}).to_parquet(path)
    build_flow(
        [ParquetSource(str(path)), Map(lambda b: {"v": b["v"] * 10}), ParquetTarget(str(out))]
    ).run().await_termination()
    assert pd.read_parquet(out)["v"].tolist() == [10, 20, 30]


def test_a_flow_failing_mid_file_stops_reading_it(tmp_path):
    """A file is read a batch ahead in a thread: when the flow fails, that reading stops and the
    error is the flow's."""
    import threading

    n = 300_000
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"k": np.arange(n) % 7, "v": np.arange(n)}), path)

    def fail_late(body):
        if body["v"] == 70_000:
            raise ValueError("row 70000")
        return body

    flow = build_flow([ParquetSource(str(path), key_field="k"), Map(fail_late)])
    with pytest.raises(ValueError, match="row 70000"):
        flow.run().await_termination()
    for thread in threading.enumerate():
        if thread.name.startswith("storey-parquet-read"):
            thread.join(5)
            assert not thread.is_alive()
