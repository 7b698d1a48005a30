"""The backfill split by key on a Dask cluster (storey.distributed) against the single-process one.

The cluster is a LocalCluster of 2 worker processes, started once for the module. Each output is
compared with what `storey backfill` writes from the same files in one process: the same rows,
with the same features and column types; read partition by partition, in arrival order.
"""

import logging
import pathlib
import sqlite3
import subprocess
import sys
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storey.cli import main
from storey.cli.feature_spec import parse_specs
from storey.cli.inputs import resolve_input
from storey.cli.sample_data import generate_events
from storey.distributed import backfill, partition_of
from storey.distributed.event_frames import decode, encode, merge, select
from storey.distributed.key_partitions import partition_numbers, text_hashes
from storey.distributed.read_units import read_units
from tests.support.faults import aggregate_then_die_once
from tests.support.terminal import storey_on_a_terminal

FEATURES = "amount:count,sum,avg,min,max,first,last,stddev@1h,6h/10m;today=amount:count,sum,max@fixed:1h,1d"
AGGREGATES = [spec.to_aggregator() for spec in parse_specs(FEATURES)]
ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as connected,
    ):
        yield connected


def history(n=40_000, keys=300, seed=5):
    """Card payments over 3 days in arrival order, a twentieth of them late: each arrives 50 to
    2000 events after its time."""
    df = generate_events(n, keys, days=3, seed=seed).to_pandas()
    rng = np.random.default_rng(seed)
    late = np.sort(rng.choice(n, n // 20, replace=False))
    arrival = np.arange(n, dtype=float)
    arrival[late] += rng.integers(50, 2000, len(late)) + 0.5
    return df.iloc[np.argsort(arrival, kind="stable")].reset_index(drop=True)


def write_files(df, folder, sizes, writer):
    """`df` split into consecutive files of `sizes` rows (the rest in the last), in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    bounds = np.cumsum([0, *sizes, len(df) - sum(sizes)])
    for i, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        writer(df.iloc[start:stop], folder / f"events-{i:02d}")


def to_parquet(df, path):
    df.to_parquet(f"{path}.parquet", index=False)


def to_csv(df, path):
    df.to_csv(f"{path}.csv", index=False)


def single_process(source, out, *extra):
    """What `storey backfill` writes from `source` in one process."""
    args = ["backfill", str(source), "--key", "user_id", "--time", "timestamp", "--features", FEATURES]
    assert main([*args, "--out", str(out), "--quiet", *extra]) == 0
    return pq.read_table(out)


def distributed_backfill(source, out, **options):
    """storey.distributed.backfill of the events in `source` (keyed by user_id, timed by
    timestamp) into the folder `out`, aggregating AGGREGATES unless `steps` are given."""
    if "steps" not in options:
        options["aggregates"] = AGGREGATES
    return backfill(str(source), key="user_id", time="timestamp", out=str(out), **options)


def assert_same_output(single, out, key="user_id"):
    """The part files in `out` hold the rows of `single` (a table), each part its keys' rows in
    `single`'s order, with the same column types; together every row, once."""
    parts = sorted(pathlib.Path(out).glob("part-*.parquet"))
    assert parts and sorted(p.name for p in pathlib.Path(out).iterdir()) == [p.name for p in parts]
    written = pq.read_table(out)
    assert written.schema.equals(single.schema, check_metadata=False), (written.schema, single.schema)
    expected = single.to_pandas()
    seen = set()
    for part in parts:
        rows = pq.read_table(part).to_pandas()
        keys = set(rows[key])
        assert not keys & seen, "a key in two partitions"
        seen |= keys
        mine = expected[expected[key].isin(keys)].reset_index(drop=True)
        pd.testing.assert_frame_equal(rows, mine, check_exact=True)
    assert seen == set(expected[key])
    assert written.num_rows == single.num_rows


@pytest.fixture(scope="module")
def parquet_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parquet") / "events"
    write_files(history(), folder, [9000, 15000, 1000], to_parquet)
    return folder


def test_a_parquet_directory_equals_the_single_process_backfill(client, parquet_files, tmp_path):
    # read by the single-process backfill as one dataset, split by the distributed one into its files
    single = single_process(parquet_files, tmp_path / "single.parquet")
    result = distributed_backfill(parquet_files, tmp_path / "out", client=client, partitions=3)
    assert result.rows == single.num_rows == 40_000
    assert result.partitions == 3 and len(result.files) == 3
    assert_same_output(single, tmp_path / "out")


def test_csv_directory_equals_the_single_process_backfill(client, tmp_path):
    df = history(12_000, 60, seed=8)
    df["timestamp"] = df["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    # empty amounts: the first ones of a file are None (no value), later ones NaN, as CSVSource
    # reads them; a note column empty in the first file (no type) and text in the others
    df["amount"] = df["amount"].astype(object)
    df.loc[df.index[:40], "amount"] = None
    df.loc[df.index[5000:5040], "amount"] = None
    df["note"] = np.where(np.arange(len(df)) % 7 == 0, "x", None)
    df.loc[df.index[:4000], "note"] = None
    write_files(df, tmp_path / "events", [4000, 4000], to_csv)
    single = single_process(tmp_path / "events", tmp_path / "single.parquet")
    distributed_backfill(tmp_path / "events", tmp_path / "out", client=client)
    assert_same_output(single, tmp_path / "out")


def test_part_files_are_retyped_as_the_single_file(client, tmp_path):
    # two keys in two partitions, one file each: a's notes are all empty and its counts whole
    a, b = "a0", next(f"b{i}" for i in range(100) if partition_of(f"b{i}", 2) != partition_of("a0", 2))
    times = pd.date_range("2024-01-01", periods=6, freq="10min", tz="UTC")
    first = pd.DataFrame({"user_id": a, "timestamp": times[:3], "amount": [1.0, 2.0, 3.0]})
    first["note"] = pd.Series([None] * 3, dtype=object)
    first["n"] = [1, 2, 3]
    second = pd.DataFrame({"user_id": b, "timestamp": times[3:], "amount": [4.0, 5.0, 6.0]})
    second["note"] = ["x", None, "y"]
    second["n"] = pd.array([4, None, 6], dtype="Int64")
    (tmp_path / "events").mkdir()
    first.to_csv(tmp_path / "events" / "1.csv", index=False)
    second.to_csv(tmp_path / "events" / "2.csv", index=False)
    single = single_process(tmp_path / "events", tmp_path / "single.parquet")
    result = distributed_backfill(tmp_path / "events", tmp_path / "out", client=client, partitions=2)
    assert len(result.files) == 2
    schemas = [pq.read_schema(path) for path in result.files]
    assert all(s.equals(single.schema, check_metadata=False) for s in schemas), (schemas, single.schema)
    assert_same_output(single, tmp_path / "out")


def test_a_killed_worker_reruns_its_partition_and_the_table_equals_the_single_process_one(client, tmp_path):
    df = history(400_000, 500, seed=13)
    write_files(df, tmp_path / "events", [150_000, 150_000], to_parquet)
    single_db = f"sqlite:///{tmp_path}/single.db#payments"
    single = single_process(tmp_path / "events", tmp_path / "single.parquet", "--table", single_db)
    marker = tmp_path / "died"
    result = distributed_backfill(
        tmp_path / "events",
        tmp_path / "out",
        # once its output file holds a first part (131072 events), a worker dies
        steps=partial(aggregate_then_die_once, AGGREGATES, str(marker), 175_000, str(tmp_path / "out")),
        client=client,
        partitions=2,
        table=f"sqlite:///{tmp_path}/dist.db#payments",
    )
    assert marker.exists()  # a worker died, and its task ran again
    assert result.rows == 400_000
    assert_same_output(single, tmp_path / "out")
    for table in ("payments", "payments__aggregations", "payments__aggregators"):
        assert sqlite_rows(tmp_path / "dist.db", table) == sqlite_rows(tmp_path / "single.db", table), table


def sqlite_rows(path, table):
    with sqlite3.connect(path) as connection:
        return sorted(connection.execute(f"SELECT * FROM {table}").fetchall())


def test_a_table_that_holds_state_is_refused(client, parquet_files, tmp_path):
    database = f"sqlite:///{tmp_path}/state.db"
    single_process(parquet_files / "events-02.parquet", tmp_path / "s.parquet", "--table", database)
    with pytest.raises(ValueError, match="already holds the state of aggregators .*'amount'.*new table"):
        distributed_backfill(parquet_files, tmp_path / "out", client=client, table=database)


def test_cli_refuses_a_table_that_holds_state_in_one_line(parquet_files, tmp_path, capsys):
    database = f"sqlite:///{tmp_path}/state.db"
    single_process(parquet_files / "events-02.parquet", tmp_path / "s.parquet", "--table", database)
    args = ["backfill", str(parquet_files), "--key", "user_id", "--time", "timestamp", "--features", FEATURES]
    assert main([*args, "--out", str(tmp_path / "out"), "--workers", "2", "--table", database]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (
        err.startswith("storey backfill: error: --table: table 'features' in sqlite:///")
        and "new table" in err
    )


def test_a_file_unreadable_on_a_worker_fails_the_run_naming_the_file(client, parquet_files, tmp_path):
    # a valid footer (the client reads it when it plans) over data that cannot be decompressed
    events = tmp_path / "events"
    events.mkdir()
    good = pq.read_table(parquet_files / "events-00.parquet")
    pq.write_table(good, events / "a.parquet")
    pq.write_table(good, events / "b.parquet", compression="zstd")
    data = bytearray((events / "b.parquet").read_bytes())
    for i in range(200, len(data) // 2, 97):
        data[i] ^= 0x5A
    (events / "b.parquet").write_bytes(bytes(data))
    with pytest.raises(Exception) as info:
        distributed_backfill(events, tmp_path / "out", client=client)
    assert str(events / "b.parquet") in str(info.value) + " ".join(getattr(info.value, "__notes__", []))
    assert not any(p.name.startswith("_shuffle") for p in (tmp_path / "out").iterdir())


def test_cli_workers_with_a_progress_bar(parquet_files, tmp_path):
    single = single_process(parquet_files / "*.parquet", tmp_path / "single.parquet")
    returncode, out, screen = storey_on_a_terminal(
        "backfill", str(parquet_files / "*.parquet"), "--key", "user_id", "--time", "timestamp",
        "--features", FEATURES, "--out", str(tmp_path / "out"), "--workers", "2",
    )  # fmt: skip
    assert returncode == 0, screen
    assert "40,000 rows" in out and "written to" in out
    assert "shuffle" in screen and "backfill" in screen and "40.0k/40.0k" in screen
    assert_same_output(single, tmp_path / "out")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "2", "--out", "f.parquet"], "--workers writes a directory"),
        (["--workers", "2", "--out", "f", "--partition-by", "$date"], "--partition-by does not combine"),
        (
            ["--scheduler", "tcp://h:1", "--out", "f", "--rows-per-file", "9"],
            "--rows-per-file does not combine",
        ),
        (["--out", "f", "--partitions", "4"], "--partitions applies to a backfill on --workers"),
    ],
)
def test_cli_options_that_do_not_combine(parquet_files, extra, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    args = ["backfill", str(parquet_files), "--key", "user_id", "--time", "timestamp"]
    assert main([*args, "--features", "amount:sum@1h", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "f").exists()


def test_storey_and_its_plain_backfill_never_import_dask(parquet_files, tmp_path):
    program = (
        "import sys, storey, storey.distributed\n"
        "from storey.cli import main\n"
        f"assert main(['backfill', {str(parquet_files)!r}, '--key', 'user_id', '--time', 'timestamp',"
        f" '--features', 'amount:sum@1h', '--out', {str(tmp_path / 'o.parquet')!r}, '--quiet']) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_workers_and_scheduler_exclude_each_other(parquet_files, capsys):
    with pytest.raises(SystemExit):
        main(["backfill", str(parquet_files), "--key", "k", "--time", "t", "--features", "a:sum@1h"]
             + ["--out", "o", "--workers", "2", "--scheduler", "tcp://h:1"])  # fmt: skip
    assert "not allowed with argument" in capsys.readouterr().err


def test_no_rows_no_files(client, tmp_path):
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "e.csv").write_text("user_id,timestamp,amount\n")
    events, out = tmp_path / "events", tmp_path / "out"
    result = distributed_backfill(events, out, client=client)
    assert (result.rows, result.files) == (0, [])
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, TypeError, "give either aggregates"),
        ({"aggregates": AGGREGATES, "steps": lambda table: []}, TypeError, "give either aggregates"),
        ({"aggregates": ["amount"]}, TypeError, "list of FieldAggregator"),
        ({"aggregates": AGGREGATES, "client": 0}, ValueError, "must be positive"),
        ({"aggregates": AGGREGATES, "client": 2.5}, TypeError, "client must be a dask.distributed.Client"),
        ({"aggregates": AGGREGATES, "partitions": 0}, ValueError, "partitions must be a positive int"),
        ({"aggregates": AGGREGATES, "key": "usr"}, ValueError, "no column 'usr'"),
        ({"aggregates": AGGREGATES, "out": "x.parquet"}, ValueError, "must name a directory"),
        ({"aggregates": AGGREGATES, "table": "mysql://h/db"}, ValueError, "expected sqlite:///FILE"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(parquet_files, tmp_path, kwargs, error, message):
    arguments = {"key": "user_id", "time": "timestamp", "out": str(tmp_path / "out"), **kwargs}
    with pytest.raises(error, match=message):
        backfill(str(parquet_files), **arguments)


def test_existing_output_is_kept_unless_overwrite(parquet_files, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        distributed_backfill(parquet_files, tmp_path / "out")
    assert (tmp_path / "out" / "precious.txt").read_text() == "keep"


# ---- the parts, without a cluster


def test_keys_a_table_holds_as_one_are_in_one_partition():
    for partitions in (2, 7, 64):
        assert (
            partition_of(1, partitions)
            == partition_of(1.0, partitions)
            == partition_of(np.int64(1), partitions)
        )
        assert partition_of(True, partitions) == partition_of(1, partitions)
        assert partition_of(["a", 1], partitions) == partition_of("a.1", partitions)
    spread = {partition_of(f"user_{i}", 8) for i in range(200)}
    assert spread == set(range(8))


def horner_hash(text):
    """The documented hash of one text, byte by byte."""
    mask = 2**64 - 1
    h = 0
    for byte in text.encode():
        h = (h * 0x100000001B3 + byte) & mask
    h ^= len(text.encode())
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & mask
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & mask
    return h ^ (h >> 31)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=30), st.integers(0, 5))
def test_text_hashes_are_the_hash_of_each_text(texts, skip):
    array = pa.array(["x"] * skip + texts, pa.string()).slice(skip)
    assert text_hashes(array).tolist() == [horner_hash(t) for t in texts]


def test_partitions_of_text_keys_are_the_same_from_arrow_and_from_objects():
    from storey.sources.file_sources.event_fields import LazyKeys

    keys = [f"user_{i % 37}" for i in range(500)]
    arrow = pa.array(keys)
    lazy = LazyKeys(len(keys), arrow.to_pylist, lambda: arrow)
    expected = [partition_of(k, 5) for k in keys]
    assert partition_numbers(lazy, 5).tolist() == expected
    assert partition_numbers(keys, 5).tolist() == expected
    assert partition_numbers([[k, 1] for k in keys], 5).tolist() == [partition_of(f"{k}.1", 5) for k in keys]


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_a_frame_decodes_to_the_events_the_source_read(kind, tmp_path):
    from storey import CSVSource, ParquetSource, build_flow
    from storey.core.batch import IdSequence
    from storey.flow import Flow

    df = history(3000, 20, seed=2)
    df.loc[df.index[:3], "amount"] = None
    if kind == "parquet":
        df.to_parquet(tmp_path / "e.parquet")
        source = ParquetSource(str(tmp_path / "e.parquet"), key_field="user_id", time_field="timestamp")
    else:
        df.to_csv(tmp_path / "e.csv", index=False)
        source = CSVSource(
            str(tmp_path / "e.csv"), header=True, build_dict=True, key_field="user_id", time_field="timestamp"
        )
    batches = []

    class Keep(Flow):
        _takes_batches = True

        async def _do(self, batch):
            batches.append(batch)

    build_flow([source, Keep()]).run().await_termination()
    (batch,) = batches
    mask = np.arange(batch.n) % 3 == 1
    seq = np.flatnonzero(mask).astype(np.int64)
    decoded, decoded_seq = decode(encode(select(batch, mask, seq)), IdSequence())
    assert decoded_seq.tolist() == seq.tolist()
    rows = batch.bodies_to_read()
    # repr: the same values of the same types, NaN included
    assert repr(decoded.bodies_to_read()) == repr([rows[i] for i in seq])
    assert list(decoded.keys) == [batch.keys[i] for i in seq]
    assert decoded.time_values == [batch.time_values[i] for i in seq]
    for name in batch.columns.names:
        column = decoded.columns.data.arrow_column(name)
        assert column.equals(batch.columns.data.arrow_column(name).filter(pa.array(mask))), name


def test_selections_of_a_parquet_file_merge_into_one_frame_of_its_events(tmp_path):
    from storey import ParquetSource, build_flow
    from storey.core.batch import IdSequence
    from storey.flow import Flow

    df = history(150_000, 500, seed=3)
    df.to_parquet(tmp_path / "e.parquet")
    batches = []

    class Keep(Flow):
        _takes_batches = True

        async def _do(self, batch):
            batches.append(batch)

    source = ParquetSource(str(tmp_path / "e.parquet"), key_field="user_id", time_field="timestamp")
    build_flow([source, Keep()]).run().await_termination()
    assert len(batches) == 3
    selections, expected, start = [], [], 0
    for batch in batches:
        mask = np.arange(batch.n) % 2 == 0
        selections.append(select(batch, mask, start + np.flatnonzero(mask)))
        rows = batch.bodies_to_read()
        expected += [rows[i] for i in np.flatnonzero(mask)]
        start += batch.n
    (merged,) = merge(selections)
    decoded, seq = decode(encode(merged), IdSequence())
    assert seq.tolist() == list(range(0, 150_000, 2))
    assert repr(decoded.bodies_to_read()) == repr(expected)
    assert list(decoded.keys) == [row["user_id"] for row in expected]
    assert decoded.columns.data.arrow_column("amount").to_pylist() == [row["amount"] for row in expected]


def test_a_parquet_directory_is_split_into_its_files_only_when_each_reads_the_same(tmp_path):
    df = history(300, 10, seed=1)
    plain = tmp_path / "plain"
    write_files(df, plain, [100, 100], to_parquet)
    files = read_units(resolve_input(str(plain)))
    assert [pathlib.Path(f).name for f in files] == [
        "events-00.parquet",
        "events-01.parquet",
        "events-02.parquet",
    ]
    hive = tmp_path / "hive"
    for day, group in df.groupby(df["timestamp"].dt.strftime("%Y-%m-%d")):
        (hive / f"day={day}").mkdir(parents=True)
        group.to_parquet(hive / f"day={day}" / "e.parquet", index=False)
    assert read_units(resolve_input(str(hive))) == [str(hive)]
    nulls = tmp_path / "nulls"
    df["n"] = pd.array(np.arange(len(df)), dtype="Int64")
    df.loc[df.index[150], "n"] = None
    write_files(df, nulls, [100, 100], to_parquet)
    assert read_units(resolve_input(str(nulls))) == [str(nulls)]


def test_a_hive_partitioned_directory_equals_the_single_process_backfill(client, tmp_path):
    df = history(6000, 40, seed=4)
    hive = tmp_path / "hive"
    for day, group in df.groupby(df["timestamp"].dt.strftime("%Y-%m-%d"), sort=True):
        (hive / f"day={day}").mkdir(parents=True)
        group.to_parquet(hive / f"day={day}" / "e.parquet", index=False)
    single = single_process(hive, tmp_path / "single.parquet")
    assert "day" in single.column_names
    # the cluster named by its scheduler's address, as `storey backfill --scheduler ADDRESS` names it
    address = client.scheduler.address
    assert address.startswith("tcp://")
    distributed_backfill(hive, tmp_path / "out", client=address)
    assert_same_output(single, tmp_path / "out")
