"""DataframeSource: DataFrame rows as events, bodies as the reference builds them, kept columnar."""

import datetime as dt
import math
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storey import DataframeSource, Filter, Map, Reduce, build_flow
from storey.core.columns import Columns
from tests.support.conformance import assert_matches, encode, load_case
from tests.support.replay_runs import MODES, BatchLog, encoded, frame, run_flow

UTC = dt.UTC


@pytest.mark.parametrize("mode", MODES)
def test_conformance_basic(mode):
    case = load_case("dataframe_source_basic")
    dfs = [frame(f) for f in case["inputs"]["dataframes"]]
    events, _ = run_flow(DataframeSource(dfs, key_field="k", time_field="t", id_field="eid"), mode=mode)
    assert_matches(case["expected"]["events"], encoded(events, id=True))


@pytest.mark.parametrize("mode", MODES)
def test_conformance_odd_shapes(mode):
    # index levels become fields, rows with a None key are skipped, odd column names are renamed
    # positionally as the reference's namedtuple rows rename them (a quirk kept: it is consistent)
    case = load_case("dataframe_source_odd_shapes")
    single, _ = run_flow(
        DataframeSource(frame(case["inputs"]["dataframe"]), key_field="k", time_field="t"), mode=mode
    )
    assert_matches(case["expected"]["single_key"], encoded(single))
    listed, _ = run_flow(
        DataframeSource(frame(case["inputs"]["dataframe2"]), key_field=["k1", "k2"], time_field="t"),
        mode=mode,
    )
    assert_matches(case["expected"]["list_key"], encoded(listed))


def test_renamed_column_can_be_named_as_it_is_in_the_frame():
    # the reference raises KeyError for key_field='a b' (its body holds '_1'); both names work here
    df = pd.DataFrame({"a b": ["x", "y"], "v": [1, 2]})
    events, _ = run_flow(DataframeSource(df, key_field="a b"))
    assert [e.key for e in events] == ["x", "y"]
    assert events[0].body == {"_1": "x", "v": 1}
    events, _ = run_flow(DataframeSource(df, key_field="_1"))
    assert [e.key for e in events] == ["x", "y"]


def test_int_column_names_can_be_key_and_time_fields():
    # the reference ignores key_field=0 (it is falsy); here it names the column 0
    df = pd.DataFrame({0: ["a", "b"], 1: [1600000000, 1600000001]})
    events, _ = run_flow(DataframeSource(df, key_field=0, time_field=1))
    assert [e.key for e in events] == ["a", "b"]
    assert events[0].time == dt.datetime(2020, 9, 13, 12, 26, 40)
    assert events[0].body == {"_1": "a", "_2": 1600000000}


def test_row_values_have_the_types_the_reference_gives():
    ts = pd.to_datetime(["2020-01-01 00:00", "2020-01-01 00:01", None])
    df = pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [1.5, np.nan, 3.0],
            "b": [True, False, True],
            "s": ["x", None, "z"],
            "ts": ts,
            "tsu": ts.tz_localize("UTC"),
            "ii": pd.array([1, None, 3], dtype="Int64"),
            "bo": pd.array([True, None, False], dtype="boolean"),
            "o": [{"a": 1}, [1, 2], None],
            "cat": pd.Categorical(["a", "b", "a"]),
            "td": pd.to_timedelta([1, 2, 3], unit="s"),
            "d": [dt.date(2020, 1, 1), dt.date(2020, 1, 2), dt.date(2020, 1, 3)],
        }
    )
    events, _ = run_flow(DataframeSource(df))
    first, second, third = (e.body for e in events)
    assert type(first["i"]) is int and type(first["f"]) is float and type(first["b"]) is bool
    assert math.isnan(second["f"])
    assert first["s"] == "x" and second["s"] is None
    assert type(first["ts"]) is pd.Timestamp and first["ts"].tzinfo is None
    assert first["tsu"] == pd.Timestamp("2020-01-01", tz="UTC") and first["tsu"].tzinfo is not None
    assert third["ts"] is pd.NaT
    assert type(first["ii"]) is np.int64 and second["ii"] is pd.NA
    assert type(first["bo"]) is np.bool_ and second["bo"] is pd.NA
    assert first["o"] == {"a": 1} and second["o"] == [1, 2] and third["o"] is None
    assert first["cat"] == "a" and second["cat"] == "b"
    assert second["td"] == pd.Timedelta(seconds=2)
    assert first["d"] == dt.date(2020, 1, 1)
    assert list(first) == list(df.columns)


def test_named_index_levels_follow_the_columns_and_replace_a_column_of_their_name():
    df = pd.DataFrame({"z": [1], "a": [2]}, index=pd.Index([5], name="m"))
    (event,), _ = run_flow(DataframeSource(df))
    assert list(event.body.items()) == [("z", 1), ("a", 2), ("m", 5)]
    df = pd.DataFrame({"a": [1]}, index=pd.Index([7], name="a"))
    (event,), _ = run_flow(DataframeSource(df))
    assert event.body == {"a": 7}
    unnamed = pd.DataFrame({"a": [1, 2]}, index=["x", "y"])
    events, _ = run_flow(DataframeSource(unnamed))
    assert [e.body for e in events] == [{"a": 1}, {"a": 2}]


def test_a_single_key_skips_only_none_a_list_key_skips_any_missing_part():
    df = pd.DataFrame(
        {
            "k": pd.Series(["a", None, np.nan, "", "e"], dtype=object),
            "f": [1.0, 2.0, np.nan, 4.0, 5.0],
            "v": range(5),
        }
    )
    events, _ = run_flow(DataframeSource(df, key_field="k"))
    assert [e.body["v"] for e in events] == [0, 2, 3, 4]
    assert math.isnan(events[1].key) and events[2].key == ""
    events, _ = run_flow(DataframeSource(df, key_field=["k", "f"]))
    assert [e.key for e in events] == [["a", 1.0], ["", 4.0], ["e", 5.0]]


def test_pandas_default_strings_give_none_for_missing_values():
    df = pd.DataFrame({"k": ["a", None, "c"], "s": ["x", None, "z"]})
    events, _ = run_flow(DataframeSource(df, key_field="k"))
    assert [e.key for e in events] == ["a", "c"]
    events, _ = run_flow(DataframeSource(df))
    assert events[1].body == {"k": None, "s": None}


@pytest.mark.parametrize("mode", MODES)
def test_times_from_timestamps_keep_their_zone_and_are_utc_instants(mode):
    naive = pd.to_datetime(["2020-07-21 21:40:00", "2020-07-21 21:41:00"])
    df = pd.DataFrame({"t": naive, "tz": naive.tz_localize("Asia/Tokyo"), "v": [1, 2]})
    log = BatchLog()
    events, _ = run_flow(DataframeSource(df, time_field="t"), log, mode=mode)
    assert [e.time for e in events] == list(naive)
    assert type(events[0].time) is pd.Timestamp and events[0].time.tzinfo is None
    # naive times are UTC, whatever the machine's zone (the tests run in America/New_York)
    assert log.times[0].tolist() == [int(naive[0].value), int(naive[1].value)]
    events, _ = run_flow(DataframeSource(df, time_field="tz"), mode=mode)
    assert events[0].time == pd.Timestamp("2020-07-21 21:40:00", tz="Asia/Tokyo")
    assert str(events[0].time.tz) == "Asia/Tokyo"


def test_times_from_strings_and_epoch_seconds():
    df = pd.DataFrame({"t": pd.Series(["2020-01-01T00:00:00", "2020-01-01T00:00:00+02:00"], dtype=object)})
    events, _ = run_flow(DataframeSource(df, time_field="t"))
    assert events[0].time == dt.datetime(2020, 1, 1)
    assert events[1].time.utcoffset() == dt.timedelta(hours=2)
    assert events[0].body == {"t": "2020-01-01T00:00:00"}
    epochs = pd.DataFrame({"t": [1600000000, 1600000001]})
    events, _ = run_flow(DataframeSource(epochs, time_field="t"))
    assert [e.time for e in events] == [
        dt.datetime(2020, 9, 13, 12, 26, 40),
        dt.datetime(2020, 9, 13, 12, 26, 41),
    ]


def test_without_time_field_events_get_the_current_time_aware_utc():
    before = dt.datetime.now(UTC)
    events, _ = run_flow(DataframeSource(pd.DataFrame({"a": [1]})))
    assert before <= events[0].time <= dt.datetime.now(UTC)


def test_ids_are_generated_or_come_from_the_id_field():
    df = pd.DataFrame({"a": [1, 2], "eid": ["x", "y"]})
    events, _ = run_flow(DataframeSource(df))
    assert len({e.id for e in events}) == 2 and all(isinstance(e.id, str) for e in events)
    events, _ = run_flow(DataframeSource(df, id_field="eid"))
    assert [e.id for e in events] == ["x", "y"]


def test_many_frames_and_many_batches_keep_row_order():
    from storey.sources.file_sources.dataframe_source import BATCH_ROWS

    n = BATCH_ROWS + 25_000
    dfs = (pd.DataFrame({"i": np.arange(start, start + n)}) for start in (0, n))
    log = BatchLog()
    result = (
        build_flow([DataframeSource(dfs), log, Reduce(0, lambda acc, body: acc + 1)])
        .run()
        .await_termination()
    )
    assert result == 2 * n
    assert max(log.sizes) <= BATCH_ROWS and len(log.sizes) >= 4
    events, _ = run_flow(DataframeSource([pd.DataFrame({"i": np.arange(n)}), pd.DataFrame({"i": [-1]})]))
    assert [e.body["i"] for e in events] == [*range(n), -1]


def test_frames_from_an_iterator_are_taken_as_the_flow_goes_not_all_ahead():
    # a history read in chunks (pd.read_csv(chunksize=...), a generator of frames) is held a few
    # chunks at a time, whatever its length, while the flow is slower than the reading
    taken = 0
    leads = []

    def chunks():
        nonlocal taken
        for start in range(0, 200 * 10, 10):
            taken += 1
            yield pd.DataFrame({"chunk": [start // 10] * 10})

    def slow_step(body):
        if body["chunk"] == 0:
            time.sleep(0.3)  # the reading, were it unbounded, would take every chunk meanwhile
        leads.append(taken - body["chunk"])
        return body

    count = build_flow([DataframeSource(chunks()), Map(slow_step), Reduce(0, lambda acc, b: acc + 1)])
    assert count.run().await_termination() == 2000
    assert max(leads) <= 8


def test_empty_frames_and_no_frames_give_no_events():
    result = build_flow([DataframeSource([]), Reduce(0, lambda acc, b: acc + 1)]).run().await_termination()
    assert result == 0
    events, _ = run_flow(DataframeSource(pd.DataFrame({"a": []}), key_field="a"))
    assert events == []


def test_a_flow_without_user_functions_never_builds_rows(monkeypatch):
    def no_rows(self):
        raise AssertionError("rows were built")

    monkeypatch.setattr(Columns, "to_rows", no_rows)
    df = pd.DataFrame({"k": ["a", None, "b"] * 5000, "v": np.arange(15000), "t": pd.Timestamp("2020-01-01")})
    log = BatchLog()
    build_flow([DataframeSource(df, key_field="k", time_field="t"), log]).run().await_termination()
    assert sum(log.sizes) == 10000 and all(log.columnar)


@pytest.mark.parametrize("full_event", [False, True])
def test_user_functions_see_bodies_or_events(full_event):
    df = pd.DataFrame({"k": ["a", "b"], "v": [1, 2]})

    def double(x):
        if full_event:
            x.body = {**x.body, "v": x.body["v"] * 2}
            return x
        return {**x, "v": x["v"] * 2}

    events, _ = run_flow(
        DataframeSource(df, key_field="k"),
        Map(double, full_event=full_event),
        Filter(lambda x: (x.body if full_event else x)["v"] > 2, full_event=full_event),
    )
    assert encoded(events) == [{"body": {"k": "b", "v": 4}, "key": "b", "time": encode(events[0].time)}]


@pytest.mark.parametrize("mode", MODES)
def test_an_error_downstream_fails_the_flow_after_the_events_before_it(mode):
    df = pd.DataFrame({"v": [1, 2, 3]})
    seen = []

    def boom(body):
        if body["v"] == 2:
            raise ValueError("boom")
        return body

    chain = [DataframeSource(df), Map(boom), Map(lambda b: seen.append(b["v"]) or b)]
    if mode == "loop":
        chain.insert(1, Map(lambda b: b, long_running=True))
    with pytest.raises(ValueError, match="boom"):
        build_flow(chain).run().await_termination()
    assert seen == [1]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"key_field": "zz"}, "zz"), ({"time_field": "tt"}, "tt"), ({"id_field": "ii"}, "ii")],
)
def test_a_field_not_in_the_frame_is_a_key_error_naming_it(kwargs, field):
    with pytest.raises(KeyError, match=field):
        run_flow(DataframeSource(pd.DataFrame({"a": [1]}), **kwargs))


def test_float_times_are_a_type_error_naming_the_field():
    with pytest.raises(TypeError, match="'t'"):
        run_flow(DataframeSource(pd.DataFrame({"t": [1.5]}), time_field="t"))


def test_bad_time_strings_are_a_value_error_naming_the_field():
    with pytest.raises(ValueError, match="'t'.*garbage"):
        run_flow(DataframeSource(pd.DataFrame({"t": ["garbage"]}), time_field="t"))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"dfs": 5}, TypeError),
        ({"dfs": {"a": [1]}}, TypeError),
        ({"dfs": [], "key_field": 1.5}, TypeError),
        ({"dfs": [], "key_field": []}, ValueError),
        ({"dfs": [], "time_field": ["t"]}, TypeError),
    ],
)
def test_bad_parameters_fail_at_construction(kwargs, error):
    with pytest.raises(error, match="DataframeSource"):
        DataframeSource(**kwargs)


def test_items_that_are_not_frames_fail_the_run():
    with pytest.raises(TypeError, match="item 1"):
        run_flow(DataframeSource([pd.DataFrame({"a": [1]}), "nope"]))


def test_a_flow_can_run_twice():
    flow = build_flow([DataframeSource(pd.DataFrame({"a": [1, 2]})), Reduce(0, lambda acc, b: acc + b["a"])])
    assert flow.run().await_termination() == 3
    assert flow.run().await_termination() == 3


@pytest.mark.parametrize("mode", MODES)
def test_conformance_aggregation_over_a_dataframe(mode):
    from storey import AggregateByKey, FieldAggregator, NoopDriver, Table
    from storey.dtypes import SlidingWindows

    case = load_case("agg_dataframe_source")
    df = frame(case["inputs"]["dataframe"])
    aggregate = AggregateByKey(
        [FieldAggregator("amt", "amount", ["sum", "count", "max"], SlidingWindows(["1h", "4h"], "30m"))],
        Table("t", NoopDriver()),
    )
    events, _ = run_flow(DataframeSource(df, key_field="user", time_field="when"), aggregate, mode=mode)
    assert_matches(case["expected"]["events"], encoded(events))


@pytest.mark.parametrize("dtype", ["str", "string[pyarrow]", "string[python]", object])
def test_text_key_columns_of_every_pandas_storage_key_the_same_state(dtype, monkeypatch, tmp_path):
    # pandas' arrow-backed text reaches the aggregation as arrow (no str per row): same slots,
    # same features, and the same $key column written, whatever the storage and batch bounds
    from storey import AggregateByKey, FieldAggregator, NoopDriver, ParquetTarget, Table
    from storey.dtypes import SlidingWindows
    from storey.sources.file_sources import dataframe_source

    monkeypatch.setattr(dataframe_source, "BATCH_ROWS", 3)
    users = ["u1", "u2", None, "u1", "u3", "u2", "u1", "u3"]
    if dtype not in ("str", object):
        users[2] = "u4"  # a missing value there is pd.NA: a key, as in the reference
    df = pd.DataFrame(
        {
            "user": pd.Series(users, dtype=dtype),
            "when": pd.date_range("2024-01-01", periods=len(users), freq="5min", tz="UTC"),
            "amount": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0],
        }
    )
    aggregate = AggregateByKey(
        [FieldAggregator("amt", "amount", ["sum", "count"], SlidingWindows(["10m", "30m"], "5m"))],
        Table("t", NoopDriver()),
    )
    path = str(tmp_path / "out.parquet")
    flow = build_flow(
        [
            DataframeSource(df, key_field="user", time_field="when"),
            aggregate,
            ParquetTarget(path, columns=["$key", "amt_sum_30m"]),
        ]
    )
    flow.run().await_termination()
    written = pd.read_parquet(path)
    kept = [u for u in users if u is not None]
    assert written["key"].tolist() == kept
    amounts = [a for u, a in zip(users, df["amount"]) if u is not None]
    times = [t for u, t in zip(users, df["when"]) if u is not None]
    window = pd.Timedelta("30min")
    expected = [
        sum(a for u2, a, t2 in zip(kept, amounts, times) if u2 == u and t2 <= t < t2 + window)
        for u, t in zip(kept, times)
    ]
    assert written["amt_sum_30m"].tolist() == expected


@pytest.mark.parametrize("dtype", ["str", "string[pyarrow]", "string[python]", object])
def test_text_body_columns_of_every_pandas_storage_are_written_and_seen_alike(dtype, monkeypatch, tmp_path):
    # a text column pandas holds in arrow reaches targets as arrow, and steps as str/None values
    from storey import CSVTarget, ParquetTarget
    from storey.sources.file_sources import dataframe_source

    monkeypatch.setattr(dataframe_source, "BATCH_ROWS", 2)
    df = pd.DataFrame(
        {
            "k": pd.Series(["a", "b", None, "d", "e"], dtype=object),
            "s": pd.Series(["x", None, "y", "z", ""], dtype=dtype),
            "v": range(5),
        }
    )
    parquet, csv = str(tmp_path / "out.parquet"), str(tmp_path / "out.csv")
    build_flow([DataframeSource(df, key_field="k"), ParquetTarget(parquet)]).run().await_termination()
    build_flow([DataframeSource(df, key_field="k"), CSVTarget(csv)]).run().await_termination()
    written = pq.read_table(parquet)
    assert written.column("s").to_pylist() == ["x", None, "z", ""]
    assert written.schema.field("s").type == pa.string()
    with open(csv) as lines:
        assert lines.read().splitlines() == ["a,x,0", "b,,1", "d,z,3", "e,,4"]
    texts = Map(lambda body: body["s"])
    values = build_flow([DataframeSource(df, key_field="k"), texts, Reduce([], lambda acc, s: acc + [s])])
    values = values.run().await_termination()
    missing = pd.NA if dtype in ("string[pyarrow]", "string[python]") else None
    assert values[0] == "x" and values[1] is missing and values[2:] == ["z", ""]
