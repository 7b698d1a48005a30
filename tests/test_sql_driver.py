"""SQLDriver on SQLite (a file) and on a real PostgreSQL server: static attributes as columns,
window state in a companion table, restarts that continue exactly, and faults."""

import datetime as dt
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa

from storey import (
    Complete,
    JoinWithTable,
    NoopDriver,
    NoSqlTarget,
    QueryByKey,
    Reduce,
    SQLDriver,
    SyncEmitSource,
    Table,
    build_flow,
)
from tests.support.restarts import (
    assert_restart_continues_exactly,
    restart_examples,
    run_live,
)
from tests.support.servers import PostgresServer, free_port
from tests.support.table_flows import emit_all
from tests.test_durable_state import T0, _sum_count

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_names = itertools.count()


@pytest.fixture(scope="module")
def postgres():
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/features.db"
    return request.getfixturevalue("postgres").url


def fresh_name():
    return f"features_{next(_names)}"


def test_constructor_checks_its_parameters(tmp_path):
    with pytest.raises(TypeError, match="SQLDriver: primary_key"):
        SQLDriver(None, "sqlite:///x.db")
    with pytest.raises(TypeError, match="SQLDriver: db_path"):
        SQLDriver("k", 5)
    with pytest.raises(ValueError, match="only SQLite and PostgreSQL"):
        SQLDriver("k", "mysql://host/db")
    with pytest.raises(ValueError, match="in-memory SQLite database"):
        SQLDriver("k", "sqlite://")
    with pytest.raises(TypeError, match="SQLDriver: time_fields"):
        SQLDriver("k", f"sqlite:///{tmp_path}/x.db", time_fields="when")


def test_static_attributes_are_columns_of_the_table_named_by_the_path(db_url):
    name = fresh_name()
    driver = SQLDriver("user", db_url, time_fields=["seen"])
    table = Table(name, driver, flush_interval_secs=None)
    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    emit_all(
        [NoSqlTarget(table, columns=["age", "score", "vip", "seen", "city"])],
        [
            {"user": "ann", "age": 31, "score": 0.5, "vip": True, "seen": when},
            {"user": "bob", "age": 40, "city": "Oslo"},
            {"user": "ann", "city": "Rome"},
        ],
        key_field="user",
    )
    engine = sa.create_engine(driver._url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text(f'SELECT * FROM "{name}" ORDER BY "user"')).mappings().all()
        columns = {c["name"]: c["type"] for c in sa.inspect(connection).get_columns(name)}
    engine.dispose()
    assert [row["user"] for row in rows] == ["ann", "bob"]
    assert rows[0]["age"] == 31 and rows[0]["city"] == "Rome" and rows[1]["city"] == "Oslo"
    assert rows[1]["seen"] is None
    assert isinstance(columns["age"], sa.Integer) and isinstance(columns["seen"], sa.DateTime)
    # a new table over the same database reads them back; time fields as aware UTC datetimes
    out = emit_all(
        [JoinWithTable(Table(name, SQLDriver("user", db_url)), "user")], [{"user": "ann"}, {"user": "eve"}]
    )
    assert out == [
        {
            "user": "ann",
            "age": 31,
            "score": 0.5,
            "vip": True,
            "seen": when.astimezone(dt.UTC),
            "city": "Rome",
        },
        {"user": "eve"},
    ]


def test_list_keys_are_several_key_columns(db_url):
    name = fresh_name()
    table = Table(name, SQLDriver(["region", "user"], db_url), flush_interval_secs=None)
    emit_all([NoSqlTarget(table)], [{"x": 1}], keys=[["eu", "ann"]])
    out = emit_all(
        [JoinWithTable(Table(name, SQLDriver("region.user", db_url)), lambda body: body["k"])],
        [{"k": ["eu", "ann"]}, {"k": ["us", "ann"]}],
    )
    assert out == [{"k": ["eu", "ann"], "x": 1}, {"k": ["us", "ann"]}]


def test_window_state_survives_a_restart(db_url):
    name = fresh_name()
    events = [{"k": f"k{i % 3}", "t": T0 + dt.timedelta(minutes=7 * i), "v": i} for i in range(30)]
    first = run_live(Table(name, SQLDriver("k", db_url)), events[:17], _sum_count)
    second = run_live(Table(name, SQLDriver("k", db_url)), events[17:], _sum_count)
    assert first + second == run_live(Table(name, NoopDriver()), events, _sum_count)
    flow = build_flow(
        [
            SyncEmitSource(key_field="k"),
            QueryByKey(["x_sum_1h"], Table(name, SQLDriver("k", db_url))),
            Complete(),
        ]
    ).run()
    assert flow.emit({"k": "k2"}, event_time=events[-1]["t"]).await_result() == {
        "k": "k2",
        "x_sum_1h": second[-1]["x_sum_1h"],
    }
    flow.terminate()
    flow.await_termination()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@restart_examples
def test_restart_continues_exactly(
    backend, request, tmp_path, events, swaps, split, aggregators, policy, first_bulk
):
    url = (
        request.getfixturevalue("postgres").url
        if backend == "postgresql"
        else f"sqlite:///{tmp_path}/restart.db"
    )
    name = fresh_name()
    assert_restart_continues_exactly(
        lambda: Table(name, SQLDriver("k", url)), events, swaps, split, aggregators, policy, first_bulk
    )


def test_a_second_process_continues_the_windows(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.db"
    events = [{"k": f"k{i % 4}", "t": T0 + dt.timedelta(minutes=5 * i), "v": i} for i in range(40)]
    script = textwrap.dedent(
        f"""
        import datetime as dt
        from storey import SQLDriver, Table
        from tests.support.restarts import run_live
        from tests.test_durable_state import T0, _sum_count
        events = [{{"k": f"k{{i % 4}}", "t": T0 + dt.timedelta(minutes=5 * i), "v": i}} for i in range(40)]
        run_live(Table("features", SQLDriver("k", {url!r})), events[:25], _sum_count)
        """
    )
    subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
        timeout=120,
    )
    continued = run_live(Table("features", SQLDriver("k", url)), events[25:], _sum_count)
    assert continued == run_live(Table("t", NoopDriver()), events, _sum_count)[25:]


def test_an_unreachable_database_fails_naming_the_table(monkeypatch):
    driver = SQLDriver("k", f"postgresql://nobody@127.0.0.1:{free_port()}/db")
    driver._backoff_secs = 0.01
    with pytest.raises(
        Exception,
        match=r"Table 'profiles': could not load the aggregator descriptions from SQLDriver\('k', "
        r"'postgresql\+psycopg://nobody@127\.0\.0\.1:\d+/db'\) \(tried 6 times\)",
    ):
        run_live(Table("profiles", driver), [{"k": "a", "t": T0, "v": 1}], _sum_count)


def test_a_table_with_other_key_columns_is_refused(tmp_path):
    path = tmp_path / "keys.db"
    with sqlite3.connect(path) as connection:
        connection.execute('CREATE TABLE profiles ("id" TEXT PRIMARY KEY, "x" INTEGER)')
    with pytest.raises(
        ValueError,
        match=r"table 'profiles' has the key column\(s\) \['id'\], not this driver's primary_key \['user'\]",
    ):
        emit_all(
            [JoinWithTable(Table("profiles", SQLDriver("user", f"sqlite:///{path}")), "user")],
            [{"user": "a"}],
        )


def test_a_value_a_column_cannot_hold_names_the_table_the_key_and_the_column(db_url):
    name = fresh_name()
    table = Table(name, SQLDriver("user", db_url), flush_interval_secs=None)
    emit_all([NoSqlTarget(table)], [{"user": "ann", "age": 31}], key_field="user")
    other = Table(name, SQLDriver("user", db_url), flush_interval_secs=None)
    with pytest.raises(
        ValueError,
        match=rf"Table '{name}': could not save 1 key \('bob'\).*"
        rf"column 'age' \(BIGINT\) of table '{name}' cannot hold 'old'",
    ):
        emit_all([NoSqlTarget(other)], [{"user": "bob", "age": "old"}], key_field="user")
    # nothing of the failed flush was written
    out = emit_all([JoinWithTable(Table(name, SQLDriver("user", db_url)), "user")], [{"user": "bob"}])
    assert out == [{"user": "bob"}]


def test_flushes_outlive_a_server_restart(postgres):
    name = fresh_name()
    events = [{"k": f"k{i % 5}", "t": T0 + dt.timedelta(minutes=3 * i), "v": i} for i in range(60)]
    table = Table(name, SQLDriver("k", postgres.url), flush_interval_secs=0.05)
    flow = build_flow([SyncEmitSource(key_field="k", time_field="t"), *_aggregate(table), Complete()]).run()
    results = [flow.emit(dict(body)).await_result() for body in events[:30]]
    postgres.restart()
    results += [flow.emit(dict(body)).await_result() for body in events[30:]]
    flow.terminate()
    flow.await_termination()
    expected = run_live(Table(name, NoopDriver()), events, _sum_count)
    assert results == expected
    # every acknowledged event is in the stored windows: a new process reads them
    flow = build_flow(
        [
            SyncEmitSource(key_field="k"),
            QueryByKey(["x_count_1h"], Table(name, SQLDriver("k", postgres.url))),
            Complete(),
        ]
    ).run()
    assert (
        flow.emit({"k": "k4"}, event_time=events[-1]["t"]).await_result()["x_count_1h"]
        == expected[-1]["x_count_1h"]
    )
    flow.terminate()
    flow.await_termination()


def _aggregate(table):
    from storey import AggregateByKey

    return [AggregateByKey(_sum_count(), table)]


KILLED_FLUSH = """
import datetime as dt, sys
from storey import AggregateByKey, DataframeSource, FieldAggregator, SQLDriver, SlidingWindows, Table
from storey import build_flow
import pandas as pd
keys, round_ = int(sys.argv[1]), int(sys.argv[2])
t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=round_)
frame = pd.DataFrame({{"k": [f"k{{i}}" for i in range(keys)], "t": [t0] * keys, "v": [1] * keys}})
table = Table("features", SQLDriver("k", {url!r}))
counts = [FieldAggregator("x", "v", ["count"], SlidingWindows(["2h"], "10m"))]
flow = build_flow([DataframeSource(frame, key_field="k", time_field="t"), AggregateByKey(counts, table)])
flow.run().await_termination()
"""


def _stored_counts(url, keys):
    """The distinct x_count_2h of every key, as a new process reads them an hour and a half later."""
    import pandas as pd

    from storey import DataframeSource

    when = T0 + dt.timedelta(hours=1, minutes=30)
    frame = pd.DataFrame({"k": [f"k{i}" for i in range(keys)], "t": [when] * keys})
    flow = build_flow(
        [
            DataframeSource(frame, key_field="k", time_field="t"),
            QueryByKey(["x_count_2h"], Table("features", SQLDriver("k", url))),
            Reduce(set(), lambda acc, body: acc | {body.get("x_count_2h")}),
        ]
    )
    return flow.run().await_termination()


def test_a_process_killed_mid_flush_leaves_the_table_as_before_or_after(tmp_path):
    url = f"sqlite:///{tmp_path}/killed.db"
    wal = tmp_path / "killed.db-wal"
    script = KILLED_FLUSH.format(url=url)
    env = {**os.environ, "PYTHONPATH": ROOT}
    keys = 20_000
    subprocess.run([sys.executable, "-c", script, str(keys), "0"], check=True, env=env, cwd=ROOT, timeout=300)
    assert _stored_counts(url, keys) == {1.0}
    # the second run's flush writes its transaction into the write-ahead log: killed once the log
    # has grown past what the first run left, it dies mid-flush
    written = wal.stat().st_size if wal.exists() else 0
    process = subprocess.Popen([sys.executable, "-c", script, str(keys), "1"], env=env, cwd=ROOT)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if wal.exists() and wal.stat().st_size > written + (256 << 10):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    assert process.wait(timeout=120) == -signal.SIGKILL
    assert _stored_counts(url, keys) == {1.0}
    # and once it completes, every key holds the second run's state
    subprocess.run([sys.executable, "-c", script, str(keys), "1"], check=True, env=env, cwd=ROOT, timeout=300)
    assert _stored_counts(url, keys) == {2.0}
