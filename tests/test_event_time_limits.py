"""Event times the windows cannot hold: outside what int64 nanoseconds hold, missing, or integers
in a unit other than seconds. Each is a ValueError naming where it is (the step, or the file, row
and field), never a crash, a wrapped-around time or an event aggregated at no time."""

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storey import (
    AggregateByKey,
    Complete,
    CSVSource,
    DataframeSource,
    FieldAggregator,
    NoopDriver,
    ParquetSource,
    ParquetTarget,
    Reduce,
    SlidingWindows,
    SyncEmitSource,
    Table,
    build_flow,
)

T0 = dt.datetime(2024, 1, 1)


def aggregate():
    aggregator = FieldAggregator("v", "v", ["sum", "count"], SlidingWindows(["1h"], "10m"))
    return AggregateByKey([aggregator], Table("t", NoopDriver()))


def features_of(source):
    rows = build_flow([source, aggregate(), Reduce([], lambda acc, body: [*acc, body])]).run()
    return [(r["v_sum_1h"], r["v_count_1h"]) for r in rows.await_termination()]


# ---- live events
@pytest.mark.parametrize("when", [dt.datetime(1678, 1, 1), dt.datetime(2262, 4, 1), T0])
def test_live_times_that_nanoseconds_hold_are_aggregated(when):
    controller = build_flow([SyncEmitSource(), aggregate(), Complete()]).run()
    first = controller.emit({"v": 2.0}, key="a", event_time=when).await_result()
    second = controller.emit({"v": 3.0}, key="a", event_time=when + dt.timedelta(minutes=1)).await_result()
    controller.terminate()
    controller.await_termination()
    assert (first["v_sum_1h"], second["v_sum_1h"], second["v_count_1h"]) == (2.0, 5.0, 2.0)


@pytest.mark.parametrize("year", [1, 1677, 2263, 3000, 9999])
def test_a_live_time_nanoseconds_cannot_hold_is_a_value_error_naming_step_and_value(year):
    controller = build_flow([SyncEmitSource(), aggregate(), Complete()]).run()
    with pytest.raises(ValueError, match=rf"AggregateByKey: event time 0*{year}-06-01 .*out of range"):
        controller.emit({"v": 1.0}, key="a", event_time=dt.datetime(year, 6, 1)).await_result()
    controller.terminate()
    with pytest.raises(ValueError):
        controller.await_termination()


# ---- times in files
@pytest.mark.parametrize("year", [1, 3000])
def test_parquet_times_nanoseconds_cannot_hold_name_the_file_row_and_field(tmp_path, year):
    path = str(tmp_path / "far.parquet")
    times = pa.array([T0, dt.datetime(year, 1, 1)], pa.timestamp("us"))
    pq.write_table(pa.table({"k": ["a", "b"], "t": times, "v": [1.0, 2.0]}), path)
    with pytest.raises(ValueError, match=rf"ParquetSource: {path}, row 2, time_field 't': .*{year}-01-01"):
        features_of(ParquetSource(path, key_field="k", time_field="t"))


def test_a_far_parquet_time_in_a_body_field_names_the_file_when_read(tmp_path):
    path = str(tmp_path / "far.parquet")
    far = pa.array([dt.datetime(3000, 1, 1)], pa.timestamp("us"))
    pq.write_table(pa.table({"k": ["a"], "t": pa.array([T0], pa.timestamp("us")), "d": far}), path)
    flow = build_flow([ParquetSource(path, key_field="k", time_field="t"), Reduce([], lambda a, b: [*a, b])])
    with pytest.raises(ValueError, match=rf"{path}, field 'd': .*3000-01-01"):
        flow.run().await_termination()


def test_csv_and_dataframe_times_nanoseconds_cannot_hold_are_errors_not_wrapped_times(tmp_path):
    path = tmp_path / "far.csv"
    path.write_text("k,t,v\na,2024-01-01T00:00:00,1\na,3000-01-01T00:00:00,2\n")
    csv = CSVSource(str(path), header=True, build_dict=True, key_field="k", time_field="t")
    with pytest.raises(ValueError, match=rf"CSVSource: {path}, row 2, time_field 't': .*3000-01-01"):
        features_of(csv)
    times = pd.Series([T0, dt.datetime(3000, 1, 1)], dtype="datetime64[us]")
    df = pd.DataFrame({"k": ["a", "a"], "t": times, "v": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"DataframeSource: DataFrame 0, row 2, field 't': .*3000-01-01"):
        features_of(DataframeSource(df, key_field="k", time_field="t"))


def test_a_far_csv_date_in_a_body_field_keeps_its_value(tmp_path):
    path = tmp_path / "dates.csv"
    path.write_text("k,t,d\na,2024-01-01T00:00:00,3000-01-01T00:00:00\n")
    out = str(tmp_path / "out.parquet")
    source = CSVSource(
        str(path), header=True, build_dict=True, key_field="k", time_field="t", parse_dates=["d"]
    )
    rows = (
        build_flow([source, ParquetTarget(out), Reduce([], lambda a, b: [*a, b])]).run().await_termination()
    )
    assert [r["d"] for r in rows] == [dt.datetime(3000, 1, 1)]
    assert pq.read_table(out).column("d").to_pylist() == [dt.datetime(3000, 1, 1)]


# ---- missing times
def test_a_parquet_row_without_a_time_names_the_file_row_and_field(tmp_path):
    path = str(tmp_path / "null.parquet")
    times = pa.array([T0, None, T0], pa.timestamp("us"))
    pq.write_table(pa.table({"k": ["a", "a", "a"], "t": times, "v": [1.0, 2.0, 3.0]}), path)
    with pytest.raises(ValueError, match=rf"ParquetSource: {path}, row 2, time_field 't': has no value"):
        features_of(ParquetSource(path, key_field="k", time_field="t"))


def test_rows_skipped_for_their_key_do_not_shift_the_row_named(tmp_path):
    path = str(tmp_path / "null.parquet")
    times = pa.array([T0, T0, None], pa.timestamp("us"))
    pq.write_table(pa.table({"k": [None, "a", "a"], "t": times, "v": [1.0, 2.0, 3.0]}), path)
    with pytest.raises(ValueError, match=rf"{path}, row 3, time_field 't'"):
        features_of(ParquetSource(path, key_field="k", time_field="t"))


def test_a_csv_row_with_an_empty_time_names_the_file_row_and_field(tmp_path):
    path = tmp_path / "null.csv"
    path.write_text("k,t,v\na,2024-01-01T00:00:00,1\na,,2\na,2024-01-01T00:05:00,3\n")
    csv = CSVSource(str(path), header=True, build_dict=True, key_field="k", time_field="t")
    with pytest.raises(ValueError, match=rf"CSVSource: {path}, row 2, time_field 't': has no value"):
        features_of(csv)


@pytest.mark.parametrize(
    "times",
    [
        pd.Series([T0, None, T0], dtype="datetime64[ns]"),
        pd.Series([T0, None, T0], dtype=object),
        pd.Series(["2024-01-01T00:00:00", None, "2024-01-01T00:05:00"], dtype=object),
    ],
)
def test_a_dataframe_row_without_a_time_names_the_row_and_field(times):
    df = pd.DataFrame({"k": ["a", "a", "a"], "t": times, "v": [1.0, 2.0, 3.0]})
    with pytest.raises(
        ValueError, match=r"DataframeSource: DataFrame 0, row 2, time_field 't': has no value"
    ):
        features_of(DataframeSource(df, key_field="k", time_field="t"))


def test_rows_without_a_key_are_skipped_and_counted(tmp_path):
    path = str(tmp_path / "keys.parquet")
    times = pa.array([T0, T0, T0], pa.timestamp("us"))
    pq.write_table(pa.table({"k": [None, "a", None], "t": times, "v": [1.0, 2.0, 3.0]}), path)
    source = ParquetSource(path, key_field="k", time_field="t")
    assert features_of(source) == [(2.0, 1.0)]
    assert source.skipped_rows == 2


# ---- integer times
def test_epoch_milliseconds_read_as_seconds_are_refused_naming_the_unit(tmp_path):
    path = str(tmp_path / "ms.parquet")
    millis = [1704067200000, 1704067260000]
    pq.write_table(pa.table({"k": ["a", "a"], "t": millis, "v": [1.0, 2.0]}), path)
    with pytest.raises(ValueError, match=rf"{path}, row 1, time_field 't': .*1704067200000 .*time_unit"):
        features_of(ParquetSource(path, key_field="k", time_field="t"))


@pytest.mark.parametrize("unit, scale", [("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_time_unit_reads_integer_times_in_that_unit(tmp_path, unit, scale):
    seconds = [1704067200, 1704067260, 1704070800 + 60]
    path = str(tmp_path / "epoch.parquet")
    pq.write_table(pa.table({"k": ["a"] * 3, "t": [s * scale for s in seconds], "v": [1.0, 2.0, 4.0]}), path)
    # the third event is an hour after the first: the first leaves its window
    expected = [(1.0, 1.0), (3.0, 2.0), (4.0, 1.0)]
    assert features_of(ParquetSource(path, key_field="k", time_field="t", time_unit=unit)) == expected
    csv = tmp_path / "epoch.csv"
    csv.write_text(
        "k,t,v\n" + "".join(f"a,{s * scale},{v}\n" for s, v in zip(seconds, [1, 2, 4], strict=True))
    )
    source = CSVSource(str(csv), header=True, build_dict=True, key_field="k", time_field="t", time_unit=unit)
    assert features_of(source) == expected


def test_bad_time_unit_fails_at_construction():
    with pytest.raises(
        ValueError, match="ParquetSource: time_unit must be one of 's', 'ms', 'us', 'ns', got 'h'"
    ):
        ParquetSource("x.parquet", time_unit="h")
    with pytest.raises(ValueError, match="CSVSource: time_unit .* timestamp_format"):
        CSVSource("x.csv", header=True, time_unit="ms", timestamp_format="%Y")
