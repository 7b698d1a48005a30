import datetime as dt
import decimal
import os

import fsspec
import numpy as np
import pandas as pd
import pytest

from storey import Map, SyncEmitSource, build_flow
from storey.core.batch import EventBatch
from storey.core.columns import Columns
from storey.core.times import UTC_DATETIME, TimeStyle
from storey.targets import CSVTarget
from storey.targets.file_targets.csv_cells import arrow_float_texts, format_floats, format_times
from storey.targets.file_targets.float_text import float_texts
from tests.support.conformance import input_events, load_case
from tests.support.engine import T0, run_batches
from tests.support.replay_runs import BatchLog
from tests.support.step_runs import KINDS, run, run_collected


def lines(path):
    with open(path, newline="") as f:
        return f.read().split("\n")


# ---- the reference's recorded cases
@pytest.mark.parametrize("source", KINDS)
def test_conformance_columns_metadata(tmp_path, source):
    case = load_case("csv_target_columns_metadata")
    path = str(tmp_path / "out" / "meta.csv")
    target = CSVTarget(path, columns=["k=$key", "when=$time", "id", "value=v", "f", "nope"], header=True)
    run(source, [target], input_events(case))
    assert lines(path) == case["expected"]["lines"]


@pytest.mark.parametrize("source", KINDS)
def test_conformance_infer_header(tmp_path, source):
    case = load_case("csv_target_infer_header")
    path = str(tmp_path / "infer.csv")
    run(source, [CSVTarget(path, header=True)], input_events(case))
    assert lines(path) == case["expected"]["lines"]


def test_conformance_batch_by_key(tmp_path):
    case = load_case("csv_target_batch_by_key")
    path = str(tmp_path / "bykey.csv")
    target = CSVTarget(path, columns=["$key", "id", "v"], header=True, max_lines_before_flush=2, key="$key")
    run("sync", [target], input_events(case))
    assert lines(path) == case["expected"]["lines"]


def test_conformance_list_bodies(tmp_path):
    case = load_case("csv_target_list_bodies")
    p1, p2 = str(tmp_path / "l1.csv"), str(tmp_path / "l2.csv")
    source = SyncEmitSource()
    source.to(CSVTarget(p1, columns=["$key", "a", "b", "when=$time"], header=True))
    source.to(CSVTarget(p2, infer_columns_from_data=False))
    controller = source.run()
    for body, key, time_ in input_events(case):
        controller.emit(body, key=key, event_time=time_)
    controller.terminate()
    controller.await_termination()
    assert lines(p1) == case["expected"]["with_columns"]
    assert lines(p2) == case["expected"]["plain"]


# ---- cells
def test_cells_are_written_as_str_with_csv_quoting(tmp_path):
    path = str(tmp_path / "c.csv")
    body = {
        "a_float": 0.1 + 0.2,
        "b_big": 1e20,
        "c_int": 10**20,
        "d_nan": float("nan"),
        "e_none": None,
        "f_bool": False,
        "g_dt": dt.datetime(2020, 1, 1, 1, 2, 3, 456789),
        "h_ts": pd.Timestamp("2020-01-01 00:00:00.123456789"),
        "i_list": [1, 2],
        "j_dict": {"x": 1},
        "k_quote": 'say "hi"',
        "l_newline": "a\nb",
        "m_cr": "a\rb",
        "n_dec": decimal.Decimal("1.10"),
        "o_empty": "",
        "p_np": np.int64(5),
    }
    run("sync", [CSVTarget(path, header=True)], [(body, "k", T0)])
    with open(path, newline="") as f:
        assert f.read() == (
            ",".join(sorted(body)) + "\n"
            "0.30000000000000004,1e+20,100000000000000000000,nan,,False,2020-01-01 01:02:03.456789,"
            '2020-01-01 00:00:00.123456789,"[1, 2]",{\'x\': 1},"say ""hi""","a\nb",a\rb,1.10,,5\n'
        )


def test_a_line_with_one_empty_cell_is_quoted(tmp_path):
    path = str(tmp_path / "c.csv")
    run("sync", [CSVTarget(path, columns=["a"])], [({"a": ""}, "k", T0), ({}, "k", T0), ({"a": 1}, "k", T0)])
    assert lines(path) == ['""', '""', "1", ""]


def test_inferred_and_explicit_columns_are_sorted_together(tmp_path):
    path = str(tmp_path / "c.csv")
    target = CSVTarget(path, columns=["x=$key", "a"], infer_columns_from_data=True, header=True)
    run("sync", [target], [({"b": 1, "a": 2}, "k", T0)])
    assert lines(path) == ["a,a,b,x", "2,2,1,k", ""]


def test_list_keys_and_times_in_other_zones(tmp_path):
    path = str(tmp_path / "c.csv")
    tz = dt.timezone(dt.timedelta(hours=2))
    run("sync", [CSVTarget(path, columns=["$key", "$time"])], [({}, ["k", 2], T0.astimezone(tz))])
    assert lines(path) == ["\"['k', 2]\",2020-07-21 23:40:00+02:00", ""]


def test_dict_bodies_without_columns_write_empty_lines(tmp_path):
    path = str(tmp_path / "c.csv")
    run("sync", [CSVTarget(path, infer_columns_from_data=False)], [({"a": 1}, "k", T0), ([1, 2], "k", T0)])
    assert lines(path) == ["", "1,2", ""]


@pytest.mark.parametrize(
    "kwargs, bodies, error",
    [
        ({}, [[1, 2]], TypeError),  # cannot infer columns from a list
        ({}, ["text"], TypeError),
        ({"columns": ["a"]}, [5], TypeError),
        ({"infer_columns_from_data": False, "header": True}, [{"a": 1}], ValueError),
        ({"columns": ["$key", "a", "b"]}, [[1]], IndexError),
    ],
)
def test_bodies_that_cannot_be_written_fail_the_flow(tmp_path, kwargs, bodies, error):
    with pytest.raises(error):
        run("sync", [CSVTarget(str(tmp_path / "c.csv"), **kwargs)], [(b, "k", T0) for b in bodies])


# ---- column bodies
def column_batch():
    n = 5
    ns = pd.Timestamp(T0).value + np.arange(n, dtype=np.int64) * 1_500_000
    return EventBatch(
        n,
        columns=Columns(
            {
                "i": np.array([1, -2, 3, 4, 5], dtype=np.int32),
                "f": np.array([1.5, np.nan, 1e-7, 3.0, -0.0]),
                "b": np.array([True, False, True, False, True]),
                "s": np.array(["x", None, "y,z", 'w"', "a\nb"], dtype=object),
                "m": np.array([1, 0, 2, 0, 3], dtype=np.int64),
                "t": np.array(
                    [
                        "2020-01-01T00:00:01.5",
                        "NaT",
                        "2020-01-02",
                        "2020-01-03T00:00:00.000000001",
                        "2020-01-04",
                    ],
                    dtype="datetime64[ns]",
                ),
            },
            n,
            absent={"m": np.array([False, True, False, True, False])},
            converters={"t": lambda values: list(pd.DatetimeIndex(values))},
        ),
        keys=["a", "b", "a", None, "c"],
        times=ns,
        time_style=UTC_DATETIME,
        ids=[f"id{i}" for i in range(n)],
    )


def test_column_bodies_are_written_without_building_rows(tmp_path):
    path = str(tmp_path / "c.csv")
    seen = BatchLog()
    run_batches(
        [CSVTarget(path, columns=["$key", "$time", "i", "f", "b", "s", "m", "t"]), seen], [column_batch()]
    )
    assert seen.columnar == [True]
    with open(path, newline="") as f:
        assert f.read().split("\n") == [
            "a,2020-07-21 21:40:00+00:00,1,1.5,True,x,1,2020-01-01 00:00:01.500000",
            "b,2020-07-21 21:40:00.001500+00:00,-2,nan,False,,,NaT",
            'a,2020-07-21 21:40:00.003000+00:00,3,1e-07,True,"y,z",2,2020-01-02 00:00:00',
            ',2020-07-21 21:40:00.004500+00:00,4,3.0,False,"w""",,2020-01-03 00:00:00.000000001',
            'c,2020-07-21 21:40:00.006000+00:00,5,-0.0,True,"a',
            'b",3,2020-01-04 00:00:00',
            "",
        ]


def test_column_and_row_bodies_write_the_same_file(tmp_path):
    columns = ["$key", "$time", "$id", "i", "f", "b", "s", "m", "t", "nope"]
    run_batches([CSVTarget(str(tmp_path / "c.csv"), columns=columns, header=True)], [column_batch()])
    rows_batch = column_batch()
    rows_batch.bodies_to_change()  # noqa: B018 - hands the rows out: the columns are dropped
    run_batches([CSVTarget(str(tmp_path / "r.csv"), columns=columns, header=True)], [rows_batch])
    assert lines(tmp_path / "c.csv") == lines(tmp_path / "r.csv")


def test_floats_are_formatted_as_repr():
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            rng.standard_normal(2000) * 10.0 ** rng.integers(-12, 25, 2000),
            np.round(rng.standard_normal(500) * 1000, 2),
            rng.integers(-(10**12), 10**12, 500).astype(float),
            [
                0.0,
                -0.0,
                np.nan,
                np.inf,
                -np.inf,
                1e16,
                1e15,
                9.999999e8,
                1e9,
                1e-4,
                9.9e-5,
                5e-324,
                1.7976931348623157e308,
            ],
        ]
    )
    for texts in (format_floats, arrow_float_texts, float_texts):
        assert texts(values).to_pylist() == [repr(v) for v in values.tolist()]


def test_any_float_is_formatted_as_repr():
    # every exponent, subnormals, both signs, NaN payloads: random bit patterns
    rng = np.random.default_rng(12)
    bits = rng.integers(0, 2**64 - 1, 300_000, dtype=np.uint64, endpoint=True)
    values = bits.view(np.float64)
    # short decimals (where ties and trailing zeros matter), around the exponent thresholds
    digits = rng.integers(1, 10**6, 100_000) / 10.0 ** rng.integers(-25, 25, 100_000)
    edges = np.array([10.0**e * m for e in range(-8, 20) for m in (1, 0.999999999999999, 1.000000000000001)])
    for values in (bits.view(np.float64), digits, -digits, edges):
        expected = [repr(v) for v in values.tolist()]
        assert float_texts(values).to_pylist() == expected
        assert arrow_float_texts(values).to_pylist() == expected


@pytest.mark.parametrize(
    "tz", [None, dt.UTC, "America/New_York", dt.timezone(-dt.timedelta(hours=3, minutes=30))]
)
@pytest.mark.parametrize("pandas_style", [False, True])
def test_times_are_formatted_as_str(tz, pandas_style):
    rng = np.random.default_rng(3)
    # the whole range of nanosecond times (years 1677 to 2262), away from its ends for the zones
    ns = rng.integers(-(9 * 10**18), 9 * 10**18, 3000)
    ns[::3] = ns[::3] // 1000 * 1000
    ns[::5] = ns[::5] // 10**9 * 10**9
    ns[::7] = ns[::7] // 86_400_000_000_000 * 86_400_000_000_000
    if isinstance(tz, str):
        tz = __import__("zoneinfo").ZoneInfo(tz)
    style = TimeStyle(tz=tz, pandas=pandas_style)
    expected = [str(v) for v in style.values(ns)]
    assert format_times(ns, style.tz, pandas_style).to_pylist() == expected
    # NaT: 'NaT' for Timestamps, an empty cell for datetimes read as None
    ns[::11] = np.iinfo(np.int64).min
    missing = "NaT" if pandas_style else None
    expected = [missing if i % 11 == 0 else text for i, text in enumerate(expected)]
    assert format_times(ns, style.tz, pandas_style, missing).to_pylist() == expected


# ---- files, flushing, storage
@pytest.mark.parametrize("source", KINDS)
def test_events_pass_downstream_unchanged(tmp_path, source):
    bodies = [{"v": 1, "w": [1]}, {"v": 2}]
    assert run_collected(source, [CSVTarget(str(tmp_path / "x.csv"))], bodies) == bodies


def test_no_events_no_file(tmp_path):
    run("sync", [CSVTarget(str(tmp_path / "x.csv"), header=True, columns=["a"])], [])
    assert os.listdir(tmp_path) == []


def test_lines_are_flushed_in_order_across_flushes(tmp_path):
    path = str(tmp_path / "x.csv")
    run(
        "sync",
        [CSVTarget(path, columns=["v"], max_lines_before_flush=3)],
        [({"v": i}, "k", T0) for i in range(10)],
    )
    assert lines(path) == [str(i) for i in range(10)] + [""]


def test_file_appears_only_complete(tmp_path):
    path = str(tmp_path / "x.csv")
    controller = build_flow(
        [SyncEmitSource(), CSVTarget(path, columns=["v"], max_lines_before_flush=1)]
    ).run()
    controller.emit({"v": 1}, key="k", event_time=T0)
    controller.emit({"v": 2}, key="k", event_time=T0)
    assert not os.path.exists(path)
    controller.terminate()
    controller.await_termination()
    assert lines(path) == ["1", "2", ""]
    assert os.listdir(tmp_path) == ["x.csv"]


def test_failure_downstream_leaves_no_file(tmp_path):
    path = str(tmp_path / "f.csv")

    def boom(body):
        if body["v"] == 1:
            raise RuntimeError("boom")
        return body

    controller = build_flow([SyncEmitSource(), CSVTarget(path, columns=["v"]), Map(boom)]).run()
    try:
        controller.emit({"v": 0}, key="k", event_time=T0)
        controller.emit({"v": 1}, key="k", event_time=T0)
    except RuntimeError:
        pass
    controller.terminate()
    with pytest.raises(RuntimeError):
        controller.await_termination()
    assert os.listdir(tmp_path) == []


def test_memory_filesystem_url():
    url = "memory://storey-tests/csv/out.csv"
    run("sync", [CSVTarget(url, header=True)], [({"v": 1}, "a", T0)])
    fs = fsspec.filesystem("memory")
    assert fs.cat("/storey-tests/csv/out.csv") == b"v\n1\n"
    assert fs.ls("/storey-tests/csv", detail=False) == ["/storey-tests/csv/out.csv"]
    fs.rm("/storey-tests", recursive=True)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"columns": ["$foo"]}, ValueError),
        ({"columns": [("a", "int")]}, TypeError),
        ({"columns": 5}, TypeError),
        ({"max_lines_before_flush": 0}, ValueError),
        ({"max_seconds_before_flush": -1}, ValueError),
        ({"key": 5}, ValueError),
        ({"storage_options": "x"}, TypeError),
    ],
)
def test_bad_parameters_raise_at_construction(tmp_path, kwargs, error):
    with pytest.raises(error, match="CSVTarget"):
        CSVTarget(str(tmp_path / "x.csv"), **kwargs)


def test_row_bodies_are_written_as_pythons_csv_writer_writes_them(tmp_path):
    import csv
    import io

    rng = np.random.default_rng(11)
    zone = dt.timezone(dt.timedelta(hours=-3))
    n = 300
    base = dt.datetime(2021, 3, 4, 5, 6, 7)
    bodies = [
        {
            "f": float(rng.standard_normal() * 10.0 ** rng.integers(-8, 20)),
            "i": int(rng.integers(-(10**6), 10**6)),
            "s": ["plain", "with,comma", 'with "quote"', "line\nfeed", ""][i % 5],
            "b": bool(i % 2),
            "naive": base + dt.timedelta(microseconds=int(rng.integers(0, 10**12))),
            "aware": (base + dt.timedelta(seconds=int(rng.integers(0, 10**8)))).replace(tzinfo=zone),
            "ts": pd.Timestamp("2020-01-01", tz="UTC") + pd.Timedelta(int(rng.integers(0, 10**15)), "ns"),
            "mixed": [None, 1, "x", 2.5][i % 4],
        }
        for i in range(n)
    ]
    names = sorted(bodies[0])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    writer.writerows([[b[name] for name in names] for b in bodies])
    path = str(tmp_path / "rows.csv")
    run("sync", [CSVTarget(path, header=True)], [(b, "k", T0) for b in bodies])
    with open(path, newline="") as f:
        assert f.read() == out.getvalue()


# a file with a value of each kind, empty fields, quoting, times with and without fractions
MIXED_CSV = (
    "k,d,x,f,s\n"
    'a,2020-01-01T00:00:00.5,1,1.0,"x,y"\n'
    'b,,2,,"q""r"\n'
    "c,2020-01-02T00:00:00,,1e20,ab\n"
    "d,1969-12-31T23:59:59.999999,-5,-0.0,\n"
)


@pytest.mark.parametrize(
    "build_dict, columns, expected",
    [
        # written by storey 1.0.6 from MIXED_CSV
        (
            True,
            None,
            'd,f,k,s,x\n2020-01-01 00:00:00.500000,1.0,a,"x,y",1\n,nan,b,"q""r",2\n'
            "2020-01-02 00:00:00,1e+20,c,ab,nan\n1969-12-31 23:59:59.999999,-0.0,d,,-5\n",
        ),
        (
            False,
            ["k", "d", "x", "f", "s"],
            'k,d,x,f,s\na,2020-01-01 00:00:00.500000,1,1.0,"x,y"\nb,,2,nan,"q""r"\n'
            "c,2020-01-02 00:00:00,nan,1e+20,ab\nd,1969-12-31 23:59:59.999999,-5,-0.0,\n",
        ),
    ],
)
@pytest.mark.parametrize("rows", [False, True])
def test_csv_to_csv_writes_what_storey_writes(tmp_path, build_dict, columns, expected, rows):
    from storey import CSVSource

    path = tmp_path / "in.csv"
    path.write_text(MIXED_CSV, newline="")
    out = tmp_path / "out.csv"
    steps = [CSVSource(str(path), header=True, build_dict=build_dict, key_field="k", parse_dates=["d"])]
    if rows:
        steps.append(Map(lambda body: body))  # the target then gets rows, not columns
    steps.append(CSVTarget(str(out), header=True, columns=columns))
    build_flow(steps).run().await_termination()
    assert out.read_bytes() == expected.encode()


@pytest.mark.parametrize("build_dict", [False, True])
def test_csv_to_csv_columns_and_rows_write_the_same_file(tmp_path, build_dict):
    from storey import CSVSource

    rng = np.random.default_rng(5)
    n = 25_000
    floats = rng.standard_normal(n) * 10.0 ** rng.integers(-9, 22, n)
    floats[::7] = np.round(floats[::7])
    texts = np.array(["plain", "with,comma", 'with "quote"', "", "é"], dtype=object)[rng.integers(0, 5, n)]
    frame = pd.DataFrame(
        {
            "k": np.array(["a", "b", ""], dtype=object)[rng.integers(0, 3, n)],
            "t": pd.to_datetime(1_600_000_000 + rng.integers(0, 10**6, n), unit="s").strftime(
                "%Y-%m-%dT%H:%M:%S"
            )
            + np.where(rng.random(n) < 0.5, ".25+02:00", "+02:00"),
            "i": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(-(10**9), 10**9, n)), "Int64"),
            "f": floats,
            "b": rng.random(n) < 0.5,
            "s": texts,
        }
    )
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False)
    written = []
    for rows in (False, True):
        out = tmp_path / f"out{rows}.csv"
        columns = None if build_dict else ["$key", "$time", "k", "t", "i", "f", "b", "s"]
        steps = [CSVSource(str(path), header=True, build_dict=build_dict, key_field="k", time_field="t")]
        if rows:
            steps.append(Map(lambda body: body))
        steps.append(CSVTarget(str(out), header=True, columns=columns))
        build_flow(steps).run().await_termination()
        written.append(out.read_bytes())
    assert written[0] == written[1]
    assert written[0].count(b"\n") == n + 1 - (frame["k"] == "").sum()


def test_cells_with_a_carriage_return_are_not_quoted(tmp_path):
    import csv
    import io

    values = ["a\rb", "c,d", "e"]
    path = str(tmp_path / "c.csv")
    batch = EventBatch(
        3,
        columns=Columns({"s": np.array(values, dtype=object)}, 3),
        keys=["k"] * 3,
        times=np.zeros(3, np.int64),
    )
    run_batches([CSVTarget(path, columns=["s", "s"])], [batch])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[v, v] for v in values])
    with open(path, newline="") as f:
        assert f.read() == out.getvalue()


def test_round_trip_through_csv_source(tmp_path):
    from storey import CSVSource, DataframeSource
    from storey.steps import ReduceToDataFrame

    df = pd.DataFrame(
        {
            "k": ["a", "b", "c"],
            "t": pd.to_datetime(
                ["2020-01-01", "2020-01-02 03:04:05.5", "2020-01-04"], utc=True, format="ISO8601"
            ),
            "i": [1, 2, 3],
            "f": [1.5, 0.1, -3.0],
            "s": ["x", "y,z", 'w"'],
        }
    )
    path = str(tmp_path / "rt.csv")
    build_flow(
        [DataframeSource(df), CSVTarget(path, columns=list(df.columns), header=True)]
    ).run().await_termination()
    back = (
        build_flow([CSVSource(path, header=True, parse_dates=["t"]), ReduceToDataFrame()])
        .run()
        .await_termination()
    )
    # CSVSource hands rows on as lists, as the reference does: columns come back numbered
    assert back[1].tolist() == df["t"].tolist()
    assert back[[0, 2, 3, 4]].values.tolist() == df[["k", "i", "f", "s"]].values.tolist()


def test_empty_columns_list_infers_them_as_no_list_does(tmp_path):
    path = str(tmp_path / "c.csv")
    run("sync", [CSVTarget(path, columns=[], header=True)], [({"b": 1, "a": 2}, "k", T0)])
    assert lines(path) == ["a,b", "2,1", ""]


@pytest.mark.parametrize("kwargs", [{}, {"infer_columns_from_data": True}, {"columns": []}])
def test_a_header_with_nothing_to_name_fails_at_the_first_event(tmp_path, kwargs):
    path = str(tmp_path / "c.csv")
    with pytest.raises(ValueError, match="CSVTarget: header is True but there are no columns"):
        run("sync", [CSVTarget(path, header=True, **kwargs)], [({}, "k", T0), ({"a": 1}, "k", T0)])
    assert not (tmp_path / "c.csv").exists()
