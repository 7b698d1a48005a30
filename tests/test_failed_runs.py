"""A run that fails, or is killed, leaves no output under the final name and no temporaries: a
single file appears only complete, a directory is marked complete by `_SUCCESS` written last
and loses the files of a failed run, and the next run removes what a killed one left."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from storey import CSVTarget, DataframeSource, Map, ParquetTarget, SyncEmitSource, build_flow
from storey.cli import main
from storey.cli.sample_data import generate_events, write_events
from storey.core.storage import OwnerLock, get_filesystem, remove_stale_temporaries

T0 = dt.datetime(2024, 1, 1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def events(n):
    return pd.DataFrame({"k": [f"k{i % 7}" for i in range(n)], "t": [T0] * n, "v": list(range(n))})


def fail_at(number):
    def check(body):
        if body["v"] == number:
            raise RuntimeError(f"event {number} is bad")
        return body

    return check


def run_failing(steps):
    with pytest.raises(RuntimeError, match="is bad"):
        build_flow(steps).run().await_termination()


def listing(folder):
    return sorted(
        os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files
    )


# ---- the library's file targets
@pytest.mark.parametrize("failing_first", [True, False])
@pytest.mark.parametrize(
    "target",
    [
        lambda p: ParquetTarget(str(p / "out.parquet")),
        lambda p: ParquetTarget(str(p / "out"), partition_cols=["k"], max_events=5),
        lambda p: CSVTarget(str(p / "out.csv"), columns=["k", "v"]),
    ],
)
def test_a_failed_flow_leaves_no_file(tmp_path, target, failing_first):
    # the event 47 of 400 fails, before the target or after it
    source = DataframeSource(events(400), key_field="k", time_field="t")
    steps = [Map(fail_at(46)), target(tmp_path)]
    run_failing([source, *(steps if failing_first else steps[::-1])])
    assert listing(tmp_path) == []


def test_a_failed_live_flow_leaves_no_file(tmp_path):
    path = str(tmp_path / "out.parquet")
    controller = build_flow(
        [SyncEmitSource(buffer_size=1), ParquetTarget(path, max_events=4), Map(fail_at(46))]
    )
    controller = controller.run()
    with pytest.raises(RuntimeError):
        for i in range(400):
            controller.emit({"v": i}, key="k", event_time=T0)
    controller.terminate()
    with pytest.raises(RuntimeError):
        controller.await_termination()
    assert listing(tmp_path) == []


def test_a_complete_directory_is_marked_last_and_readers_skip_the_mark(tmp_path):
    out = tmp_path / "out"
    source = DataframeSource(events(40), key_field="k", time_field="t")
    build_flow(
        [source, ParquetTarget(str(out), partition_cols=["k"], max_events=3)]
    ).run().await_termination()
    assert (out / "_SUCCESS").exists() and (out / "_SUCCESS").stat().st_size == 0
    assert sorted(ds.dataset(str(out), partitioning="hive").to_table().column("v").to_pylist()) == list(
        range(40)
    )


def test_a_failed_run_into_a_complete_directory_leaves_it_as_it_was(tmp_path):
    out = tmp_path / "out"
    first = DataframeSource(events(10), key_field="k", time_field="t")
    build_flow([first, ParquetTarget(str(out), partition_cols=["k"], max_events=2)]).run().await_termination()
    before = listing(out)
    second = DataframeSource(events(400), key_field="k", time_field="t")
    target = ParquetTarget(str(out), partition_cols=["k", "v"], max_events=2)
    run_failing([second, target, Map(fail_at(300))])
    assert listing(out) == before and "_SUCCESS" in before


def test_the_next_run_removes_temporaries_writers_left_when_killed(tmp_path):
    fs, _ = get_filesystem(str(tmp_path))
    stale = tmp_path / f".out.parquet.{uuid.uuid4().hex}.tmp"
    stale.write_bytes(b"PAR1 half written")
    living = tmp_path / f".out.parquet.{uuid.uuid4().hex}.tmp"
    lock = OwnerLock(str(living), create=True)
    other = tmp_path / f".other.parquet.{uuid.uuid4().hex}.tmp"
    other.write_bytes(b"")
    try:
        source = DataframeSource(events(5), key_field="k", time_field="t")
        build_flow([source, ParquetTarget(str(tmp_path / "out.parquet"))]).run().await_termination()
        # a temporary whose writer still runs, and one of another file, stay
        assert listing(tmp_path) == sorted([living.name, other.name, "out.parquet"])
    finally:
        lock.release()
    remove_stale_temporaries(fs, str(tmp_path))
    assert listing(tmp_path) == ["out.parquet"]


# ---- the command line
@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """(a history, the same with event 47's time missing: a run of it fails there)."""
    folder = tmp_path_factory.mktemp("history")
    write_events(generate_events(400, 20, days=1, seed=3), str(folder / "events.parquet"))
    table = pq.read_table(folder / "events.parquet")
    times = table.column("timestamp").to_pylist()
    times[46] = None
    column = table.schema.get_field_index("timestamp")
    bad = table.set_column(column, "timestamp", pa.array(times, table.schema.field(column).type))
    pq.write_table(bad, folder / "bad.parquet")
    return folder / "events.parquet", folder / "bad.parquet"


ARGS = ["--key", "user_id", "--time", "timestamp", "--features", "amount:sum@1h", "-q"]


def snapshot(out):
    if out.is_dir():
        return {name: (out / name).read_bytes() for name in listing(out)}
    return out.read_bytes()


@pytest.mark.parametrize("out_name", ["out.parquet", "out", "parts"])
def test_a_failed_command_leaves_no_output_and_no_temporaries(history, tmp_path, out_name, capsys):
    extra = ["--partition-by", "$key"] if out_name == "parts" else []
    assert main(["backfill", str(history[1]), *ARGS, "--out", str(tmp_path / out_name), *extra]) == 1
    assert "row 47" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("out_name", ["out.parquet", "out"])
def test_overwrite_keeps_the_previous_output_until_the_new_one_is_complete(history, tmp_path, out_name):
    out = tmp_path / out_name
    assert main(["backfill", str(history[0]), *ARGS, "--out", str(out)]) == 0
    before = snapshot(out)
    assert main(["backfill", str(history[1]), *ARGS, "--out", str(out), "--overwrite"]) == 1
    assert snapshot(out) == before
    assert os.listdir(tmp_path) == [out_name]
    assert main(["backfill", str(history[0]), *ARGS, "--out", str(out), "--overwrite"]) == 0
    assert os.listdir(tmp_path) == [out_name]


def test_a_killed_command_leaves_no_output_and_the_next_run_cleans_up(tmp_path):
    source = tmp_path / "events.parquet"
    write_events(generate_events(500_000, 50_000, days=30, seed=5), str(source))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "features.parquet"
    args = ["backfill", str(source), "--key", "user_id", "--time", "timestamp"]
    args += ["--features", "amount:sum,count,max@1h,24h", "--out", str(out), "--quiet"]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen([sys.executable, "-m", "storey", *args], env=env)
    try:
        # killed once the run has started writing: its hidden folder holds a file
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if any(files for d, _, files in os.walk(out_dir)):
                break
            time.sleep(0.005)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert not out.exists()
    assert all(name.startswith(".") for name in os.listdir(out_dir))
    done = subprocess.run([sys.executable, "-m", "storey", *args], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert os.listdir(out_dir) == ["features.parquet"]
    assert pq.read_metadata(out).num_rows == 500_000
