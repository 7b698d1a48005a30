"""The `storey` command line, run as a user runs it: a subprocess on small generated files.

Its output is checked against the same flow written in Python, and its errors for bad input
(one line on stderr, a non-zero exit status, no traceback).
"""

import os
import pathlib
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from storey.cli import main
from storey.cli.sample_data import generate_events, write_events
from tests.support.terminal import storey_on_a_terminal

FEATURES = "amount:count,sum,avg,max@1h,6h/10m;today=amount:min,sum@fixed:1d"
FEATURE_NAMES = [f"amount_{a}_{w}" for a in ("count", "sum", "avg", "max") for w in ("1h", "6h")] + [
    "today_min_1d",
    "today_sum_1d",
]
ROOT = pathlib.Path(__file__).resolve().parent.parent


def storey(*args, cwd=None):
    """Runs `python -m storey ARGS`; returns the completed process (text output)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "storey", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """A small event history written as Parquet and CSV: (folder, DataFrame)."""
    folder = tmp_path_factory.mktemp("events")
    table = generate_events(3000, 40, days=2, seed=11)
    write_events(table, str(folder / "events.parquet"))
    write_events(table, str(folder / "events.csv"))
    return folder, table.to_pandas()


def python_aggregates():
    """FEATURES, as the FieldAggregators a flow written in Python gives AggregateByKey."""
    from storey import FieldAggregator, FixedWindows, SlidingWindows

    return [
        FieldAggregator(
            "amount", "amount", ["count", "sum", "avg", "max"], SlidingWindows(["1h", "6h"], "10m")
        ),
        FieldAggregator("today", "amount", ["min", "sum"], FixedWindows(["1d"])),
    ]


def python_features(df):
    """The features of every event, computed by the same flow written in Python."""
    from storey import AggregateByKey, DataframeSource, NoopDriver, Reduce, Table, build_flow

    flow = build_flow(
        [
            DataframeSource(df, key_field="user_id", time_field="timestamp"),
            AggregateByKey(python_aggregates(), Table("t", NoopDriver())),
            Reduce([], lambda acc, body: acc + [body]),
        ]
    )
    bodies = flow.run().await_termination()
    return pd.DataFrame([{name: body.get(name) for name in FEATURE_NAMES} for body in bodies])


def assert_same_features(written, expected):
    assert list(written.index) == list(expected.index)
    for name in FEATURE_NAMES:
        np.testing.assert_array_equal(
            written[name].to_numpy(float), expected[name].to_numpy(float), err_msg=name
        )


HISTORY = 2500  # the events a backfill keeps in a table, of the 3000 of `events`


def backfill_history(df, tmp_path, table_url):
    """`storey backfill` of df's first HISTORY events, keeping their final state in `table_url`;
    returns those events."""
    history = df.iloc[:HISTORY]
    history.to_parquet(tmp_path / "history.parquet")
    done = storey(
        "backfill", str(tmp_path / "history.parquet"), "--key", "user_id", "--time", "timestamp",
        "--features", FEATURES, "--out", str(tmp_path / "f.parquet"),
        "--table", table_url, "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return history


def assert_a_live_flow_continues(table, df):
    """A live flow on `table`, which holds the backfill of df's first HISTORY events, gives each
    later event the features of one flow over all of df."""
    from storey import AggregateByKey, Complete, SyncEmitSource, build_flow

    flow = build_flow(
        [
            SyncEmitSource(key_field="user_id", time_field="timestamp"),
            AggregateByKey(python_aggregates(), table),
            Complete(),
        ]
    )
    controller = flow.run()
    live = [controller.emit(row).await_result() for row in df.iloc[HISTORY:].to_dict("records")]
    controller.terminate()
    controller.await_termination()
    expected = python_features(df).iloc[HISTORY:].reset_index(drop=True)
    assert_same_features(
        pd.DataFrame([{name: body.get(name) for name in FEATURE_NAMES} for body in live]), expected
    )


def test_backfill_parquet_equals_the_flow_in_python(events, tmp_path):
    folder, df = events
    out = tmp_path / "features.parquet"
    done = storey(
        "backfill", str(folder / "events.parquet"), "--key", "user_id", "--time", "timestamp",
        "--features", FEATURES, "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no terminal: no progress bar
    assert "3,000 rows" in done.stdout and "10 features" in done.stdout
    written = pq.read_table(out).to_pandas()
    assert set(df.columns) | set(FEATURE_NAMES) == set(written.columns)
    assert written["user_id"].tolist() == df["user_id"].tolist()
    assert written["amount"].tolist() == df["amount"].tolist()
    assert_same_features(written, python_features(df))


def test_backfill_csv_with_features_given_twice(events, tmp_path):
    folder, df = events
    out = tmp_path / "features.parquet"
    spec_a, spec_b = FEATURES.split(";")
    done = storey(
        "backfill", str(folder / "events.csv"), "--key", "user_id", "--time", "timestamp",
        "--features", spec_a, "--features", spec_b, "--out", str(out), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    assert_same_features(pq.read_table(out).to_pandas(), python_features(df))


def test_print_flow_is_the_program_that_computes_the_same(events, tmp_path):
    folder, _ = events
    by_cli = tmp_path / "cli.parquet"
    by_program = tmp_path / "program.parquet"
    args = ["backfill", str(folder / "events.parquet"), "--key", "user_id", "--time", "timestamp"]
    args += ["--features", FEATURES]
    printed = storey(*args, "--out", str(by_program), "--print-flow")
    assert printed.returncode == 0, printed.stderr
    assert not by_program.exists()  # printed, not run
    program = printed.stdout
    assert "AggregateByKey(" in program and "ParquetSource(" in program
    ran = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert ran.returncode == 0, ran.stderr
    assert storey(*args, "--out", str(by_cli), "--quiet").returncode == 0
    assert pq.read_table(by_program).equals(pq.read_table(by_cli))


def test_partitioned_directory_output(events, tmp_path):
    folder, df = events
    out = tmp_path / "features"
    done = storey(
        "backfill", str(folder / "events.parquet"), "--key", "user_id", "--time", "timestamp",
        "--features", FEATURES, "--out", str(out), "--partition-by", "category", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    categories = sorted(p.name for p in out.iterdir() if p.name != "_SUCCESS")
    assert categories == sorted(f"category={c}" for c in df["category"].unique())
    assert (out / "_SUCCESS").exists()
    written = ds.dataset(str(out), format="parquet", partitioning="hive").to_table().to_pandas()
    expected = python_features(df)
    expected["amount"] = df["amount"]
    expected["timestamp"] = df["timestamp"]
    expected["user_id"] = df["user_id"]
    key = ["user_id", "timestamp", "amount"]
    written = written.sort_values(key, kind="stable").reset_index(drop=True)
    expected = expected.sort_values(key, kind="stable").reset_index(drop=True)
    assert_same_features(written, expected)


def test_existing_output_is_kept_unless_overwrite(events, tmp_path):
    folder, _ = events
    out = tmp_path / "features.parquet"
    out.write_text("precious")
    args = ["backfill", str(folder / "events.parquet"), "--key", "user_id", "--time", "timestamp"]
    args += ["--features", "amount:sum@1h", "--out", str(out)]
    refused = storey(*args)
    assert refused.returncode == 2
    assert (
        refused.stderr.strip()
        == f"storey backfill: error: --out {out} already exists: pass --overwrite to replace it"
    )
    assert out.read_text() == "precious"
    assert storey(*args, "--overwrite", "--quiet").returncode == 0
    assert pq.read_table(out).num_rows == 3000


BASE = ["--key", "user_id", "--time", "timestamp", "--out", "never-written.parquet"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["events.parquet", *BASE, "--features", "amout:sum@1h"], "no column 'amout' in"),
        (["events.parquet", *BASE, "--features", "amount:sum@1x"], "window '1x' is not a duration"),
        (["events.parquet", *BASE, "--features", "amount:median@1h"], "unknown aggregation 'median'"),
        (
            [
                "events.parquet",
                *BASE[:4],
                "--features",
                "amount:sum@1h",
                "--out",
                "o.parquet",
                "--key",
                "usr",
            ],
            "--key",
        ),
        (
            ["events.parquet", *BASE, "--features", "amount:sum@1h", "--partition-by", "$week"],
            "unknown '$week'",
        ),
        (
            ["missing.parquet", *BASE, "--features", "amount:sum@1h"],
            "no such file or directory: missing.parquet",
        ),
        (["garbage.parquet", *BASE, "--features", "amount:sum@1h"], "cannot read garbage.parquet as Parquet"),
        (["events.parquet", *BASE, "--features", "amount:sum@1h", "--time-format", "%Y"], "CSV input only"),
        (
            [
                "events.parquet",
                *BASE[:4],
                "--features",
                "amount:sum@1h",
                "--out",
                "/proc/storey-none/o.parquet",
            ],
            "--out /proc/storey-none/o.parquet: cannot create /proc/storey-none",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(events, args, message, capsys, monkeypatch):
    folder, _ = events
    (folder / "garbage.parquet").write_text("not parquet at all")
    monkeypatch.chdir(folder)
    assert main(["backfill", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("storey backfill: error: ")
    assert message in err
    assert not (folder / "never-written.parquet").exists()


def test_missing_option_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["backfill", "events.parquet", "--key", "k", "--time", "t", "--out", "o.parquet"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "storey backfill: error: the following arguments are required: --features "
        "(see storey backfill --help)\n"
    )


def test_bad_input_as_a_subprocess_has_no_traceback(events):
    folder, _ = events
    done = storey(
        "backfill", "events.parquet", "--key", "user_id", "--time", "timestamp",
        "--features", "amount:sum@1h/7m", "--out", "x.parquet", cwd=folder,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "period 7m does not divide window 1h" in done.stderr
    assert "Traceback" not in done.stderr


def test_failure_while_running_is_one_line_and_exit_1(tmp_path):
    # the time column holds text that is not a time: found only when the flow reads it
    pd.DataFrame({"k": ["a", "b"], "t": ["yesterday", "today"], "v": [1.0, 2.0]}).to_parquet(
        tmp_path / "e.parquet"
    )
    done = storey(
        "backfill", "e.parquet", "--key", "k", "--time", "t", "--features", "v:sum@1h",
        "--out", "o.parquet", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("storey backfill: failed: ")
    assert "Traceback" not in done.stderr
    with_traceback = storey(
        "--traceback", "backfill", "e.parquet", "--key", "k", "--time", "t", "--features", "v:sum@1h",
        "--out", "o.parquet", cwd=tmp_path,
    )  # fmt: skip
    assert with_traceback.returncode == 1 and "Traceback" in with_traceback.stderr


def test_console_script_is_installed():
    script = pathlib.Path(sys.executable).parent / "storey"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.strip() == "storey 1.0.6"


def test_progress_bar_on_a_terminal(events, tmp_path):
    folder, _ = events
    returncode, _, screen = storey_on_a_terminal(
        "backfill", str(folder / "events.parquet"), "--key", "user_id", "--time", "timestamp",
        "--features", "amount:sum@1h", "--out", str(tmp_path / "o.parquet"),
    )  # fmt: skip
    assert returncode == 0
    assert "backfill" in screen and "3.00k/3.00k" in screen and "rows/s" in screen


def test_sample_command(tmp_path):
    done = storey("sample", str(tmp_path / "s.csv"), "--events", "500", "--keys", "9")
    assert done.returncode == 0, done.stderr
    assert pd.read_csv(tmp_path / "s.csv")["user_id"].nunique() == 9
    bad = storey("sample", str(tmp_path / "s.json"))
    assert bad.returncode == 2 and "must end in .parquet, .pq or .csv" in bad.stderr


def test_demo_small(tmp_path):
    done = storey(
        "demo", "--events", "20000", "--keys", "30", "--live", "300", "--days", "3", "--keep", str(tmp_path)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3. identical: the 300 live events got exactly the features" in done.stdout
    assert "events/s" in done.stdout
    # the live events ran in a second process, on the table the backfill left in SQLite
    assert "live, in process" in done.stdout
    with sqlite3.connect(tmp_path / "features.db") as connection:
        assert connection.execute(
            "SELECT COUNT(DISTINCT user_id) FROM features__aggregations"
        ).fetchone() == (30,)
    # the kept features are those of the bulk backfill
    features = pq.read_table(tmp_path / "features.parquet")
    assert features.num_rows == 20000
    assert {"amount_sum_24h", "today_sum_1d"} <= set(features.column_names)


def test_demo_rejects_more_live_events_than_events(capsys):
    assert main(["demo", "--events", "100", "--live", "100"]) == 2
    assert "--live 100 must be less than --events 100" in capsys.readouterr().err


def test_demo_features_must_name_a_number_column_of_the_sample(capsys):
    assert main(["demo", "--events", "100", "--features", "category:sum@1h"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "storey demo: error: --features 'category:sum@1h': the sample events have no number"
    )
    assert main(["demo", "--events", "100", "--features", "amount:sum@1x"]) == 2
    assert "window '1x' is not a duration" in capsys.readouterr().err


def test_demo_with_own_features(tmp_path):
    done = storey(
        "demo",
        "--events",
        "3000",
        "--keys",
        "5",
        "--live",
        "50",
        "--features",
        "online:sum@1h;amount:min@fixed:1h",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "online:sum@1h; amount:min@fixed:1h (2 per event)" in done.stdout
    assert "3. identical: the 50 live events" in done.stdout


def test_fsspec_urls_in_and_out(events, capsys):
    import fsspec

    folder, df = events
    fs = fsspec.filesystem("memory")
    fs.put(str(folder / "events.parquet"), "/cli-test/in/events.parquet")
    try:
        status = main(
            ["backfill", "memory://cli-test/in/events.parquet", "--key", "user_id", "--time", "timestamp"]
            + ["--features", FEATURES, "--out", "memory://cli-test/out/features.parquet", "--quiet"]
        )
        assert status == 0, capsys.readouterr().err
        with fs.open("/cli-test/out/features.parquet", "rb") as f:
            written = pq.read_table(f).to_pandas()
        assert_same_features(written, python_features(df))
    finally:
        fs.rm("/cli-test", recursive=True)


def test_list_key_and_csv_time_format(tmp_path):
    from storey import (
        AggregateByKey,
        CSVSource,
        FieldAggregator,
        NoopDriver,
        Reduce,
        SlidingWindows,
        Table,
        build_flow,
    )

    rows = ["u,c,when,v", "a,x,01/03/2024 10:00,1.5", "a,y,01/03/2024 10:20,2", "a,x,01/03/2024 10:40,4"]
    rows += ["b,x,01/03/2024 10:50,8", "a,x,01/03/2024 11:30,16"]
    (tmp_path / "e.csv").write_text("\n".join(rows) + "\n")
    done = storey(
        "backfill", "e.csv", "--key", "u,c", "--time", "when", "--time-format", "%d/%m/%Y %H:%M",
        "--features", "v:sum,count@1h/10m", "--out", "f.parquet", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = pq.read_table(tmp_path / "f.parquet").to_pandas()
    # per (u, c) pair: a/x has 1.5, 4 then (an hour later) 16 with 4 still in the last hour
    assert written["v_sum_1h"].tolist() == [1.5, 2.0, 5.5, 8.0, 20.0]
    assert written["v_count_1h"].tolist() == [1.0, 1.0, 2.0, 1.0, 2.0]
    source = CSVSource(
        str(tmp_path / "e.csv"),
        header=True,
        build_dict=True,
        key_field=["u", "c"],
        time_field="when",
        timestamp_format="%d/%m/%Y %H:%M",
    )
    aggregator = FieldAggregator("v", "v", ["sum", "count"], SlidingWindows(["1h"], "10m"))
    aggregate = AggregateByKey([aggregator], Table("t", NoopDriver()))
    flow = build_flow([source, aggregate, Reduce([], lambda acc, body: acc + [body])])
    expected = flow.run().await_termination()
    assert written["v_sum_1h"].tolist() == [body["v_sum_1h"] for body in expected]


def test_table_keeps_the_final_state_for_a_live_flow_to_continue(events, tmp_path):
    from storey import SQLDriver, Table

    folder, df = events
    database = f"sqlite:///{tmp_path}/state.db"
    backfill_history(df, tmp_path, database + "#payments")
    assert_a_live_flow_continues(Table("payments", SQLDriver("user_id", database)), df)


def test_table_url_is_checked_and_printed(events, tmp_path):
    folder, _ = events
    args = ["backfill", str(folder / "events.parquet"), "--key", "user_id", "--time", "timestamp"]
    args += ["--features", FEATURES, "--out", str(tmp_path / "f.parquet")]
    bad = storey(*args, "--table", "mysql://host/db")
    assert bad.returncode == 2 and "--table 'mysql://host/db': expected sqlite:///FILE" in bad.stderr
    printed = storey(*args, "--table", "sqlite:///state.db#payments", "--print-flow")
    assert 'Table("payments", SQLDriver("user_id", "sqlite:///state.db"))' in printed.stdout
    printed = storey(*args, "--table", "v3io:///bigdata/payments", "--print-flow")
    assert 'Table("bigdata/payments", V3ioDriver())' in printed.stdout
    bad = storey(*args, "--table", "v3io://bigdata")
    assert bad.returncode == 2 and "expected v3io:///CONTAINER/PATH/TO/TABLE" in bad.stderr


def test_table_in_v3io_keeps_the_final_state(events, tmp_path, v3io_env):
    """`--table v3io:///container/path` writes the backfill's final state to V3IO (here the
    emulator, through V3IO_API), where a live flow continues it."""
    from storey import Table, V3ioDriver

    folder, df = events
    history = backfill_history(df, tmp_path, "v3io:///bigdata/payments")
    items = v3io_env.items("bigdata/payments")
    assert len(items) == history["user_id"].nunique()
    assert all("aggr_amount_sum_a" in item or "aggr_amount_sum_b" in item for item in items.values())
    assert_a_live_flow_continues(Table("bigdata/payments", V3ioDriver()), df)
