"""RedisDriver on a real redis-server (started on a free loopback port, nothing kept on disk): the
key layout, typed static attributes, window state that continues across restarts and processes,
two writers of one key, faults, and what a key costs in memory."""

import asyncio
import datetime as dt
import itertools
import os
import subprocess
import sys
import threading

import pandas as pd
import pytest
import redis
import redis.asyncio
from redis.crc import key_slot

from storey import (
    AggregateByKey,
    Complete,
    DataframeSource,
    FieldAggregator,
    JoinWithTable,
    MapWithState,
    NoopDriver,
    NoSqlTarget,
    QueryByKey,
    Reduce,
    SlidingWindows,
    SyncEmitSource,
    Table,
    build_flow,
)
from storey.redis_driver import RedisDriver, WriteConflictError
from tests.support.restarts import (
    AGGREGATOR_SETS,
    assert_restart_continues_exactly,
    comparable,
    restart_examples,
    run_live,
)
from tests.support.servers import RedisServer, free_port
from tests.support.table_flows import emit_all
from tests.test_durable_state import T0, _sum_count

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_names = itertools.count()


@pytest.fixture(scope="module")
def server():
    with RedisServer() as running:
        yield running


@pytest.fixture
def own_server():
    """A server of the test's own, for tests that stop or pause it."""
    with RedisServer() as running:
        yield running


def fresh_name():
    return f"features/{next(_names)}"


def query(table, keys, features, when):
    """What QueryByKey gives for each of `keys` at `when` (one batch)."""
    frame = pd.DataFrame({"k": keys, "t": [when] * len(keys)})
    flow = build_flow(
        [
            DataframeSource(frame, key_field="k", time_field="t"),
            QueryByKey(features, table),
            Reduce([], lambda acc, body: acc + [body]),
        ]
    )
    return flow.run().await_termination()


class CountingRedis(redis.Redis):
    """A client that counts the pipelines it sends (each one round trip)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pipelines = 0

    def pipeline(self, *args, **kwargs):
        self.pipelines += 1
        return super().pipeline(*args, **kwargs)


def test_constructor_checks_its_parameters(server):
    with pytest.raises(ValueError, match="give redis_client or redis_url, not both"):
        RedisDriver(redis.Redis(), redis_url=server.url)
    with pytest.raises(TypeError, match="RedisDriver: redis_client must be a client of the redis package"):
        RedisDriver("redis://localhost")
    with pytest.raises(ValueError, match="RedisDriver: redis_url 'http://x' is not a Redis URL"):
        RedisDriver(redis_url="http://x")
    with pytest.raises(ValueError, match=r"RedisDriver: key_prefix must be a string without '\{'"):
        RedisDriver(key_prefix="a{b}")
    with pytest.raises(ValueError, match="decode_responses=True"):
        RedisDriver(redis.Redis.from_url(server.url, decode_responses=True))
    with pytest.raises(ValueError, match=r"table path 'a\{b\}' may not hold"):
        emit_all([NoSqlTarget(Table("a{b}", RedisDriver(redis_url=server.url)))], [{"x": 1}], keys=["k"])


def test_one_hash_per_key_named_by_prefix_path_and_hash_tagged_key(server):
    name = fresh_name()
    client = redis.Redis.from_url(server.url)
    driver = RedisDriver(redis_url=server.url, key_prefix="app:")
    profiles = Table(f"{name}/profiles", driver, flush_interval_secs=None)
    counts = Table(f"{name}/counts", driver)
    emit_all(
        [NoSqlTarget(profiles, columns=["city"]), AggregateByKey(_sum_count(), counts)],
        [{"k": "ann", "city": "Oslo", "v": 1, "t": T0}, {"k": ["eu", 7], "city": "Rome", "v": 2, "t": T0}],
        key_field="k",
        time_field="t",
    )
    assert sorted(client.keys(f"app:{name}/*")) == [
        f"app:{name}/counts:__schema".encode(),
        f"app:{name}/counts:{{ann}}".encode(),
        f"app:{name}/counts:{{eu.7}}".encode(),
        f"app:{name}/profiles:{{ann}}".encode(),
        f"app:{name}/profiles:{{eu.7}}".encode(),
    ]
    # an entity's hashes in every table are on one cluster slot
    assert key_slot(f"app:{name}/counts:{{ann}}".encode()) == key_slot(
        f"app:{name}/profiles:{{ann}}".encode()
    )
    assert client.hget(f"app:{name}/profiles:{{ann}}", "city") == b'"Oslo"'
    held = client.hgetall(f"app:{name}/counts:{{ann}}")
    assert sorted(held) == [b"__aggr:x:floats", b"__aggr:x:ints", b"__version", b"__writer"]
    assert held[b"__version"] == b"1"
    assert client.hkeys(f"app:{name}/counts:__schema") == [b"x"]


def test_static_attributes_keep_their_types(server):
    name = fresh_name()
    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    values = {
        "age": 31,
        "score": 0.5,
        "nan": float("nan"),
        "vip": True,
        "city": "Zürich",
        "digits": "007",
        "seen": when,
        "naive": dt.datetime(2024, 1, 2, 3, 4, 5, 6),
        "day": dt.date(2024, 2, 29),
        "wait": dt.timedelta(days=1, seconds=2, microseconds=3),
        "blob": b"\x00\xff",
        "tags": ["a", 1, None],
        "nested": {"x": [1.5, {"y": False}]},
        "stamp": pd.Timestamp("2024-03-01 10:00", tz="UTC"),
    }
    table = Table(name, RedisDriver(redis_url=server.url), flush_interval_secs=None)
    emit_all([NoSqlTarget(table)], [values], keys=["ann"])
    (out,) = emit_all([JoinWithTable(Table(name, RedisDriver(redis_url=server.url)), "k")], [{"k": "ann"}])
    nan = out.pop("nan")
    assert nan != nan
    expected = {"k": "ann", **values, "stamp": dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC)}
    del expected["nan"]
    assert out == expected
    assert {name: type(value) for name, value in out.items()} == {
        name: type(value) for name, value in expected.items()
    }


def test_fields_another_program_wrote_as_plain_text_are_read_as_text(server):
    name = fresh_name()
    fields = {"note": "plain text", "raw": b"\xff\x00", "odd": "@when:later", "n": "42"}
    redis.Redis.from_url(server.url).hset(f"storey:{name}:{{k}}", mapping=fields)
    out = emit_all([JoinWithTable(Table(name, RedisDriver(redis_url=server.url)), "k")], [{"k": "k"}])
    assert out == [{"k": "k", "note": "plain text", "raw": b"\xff\x00", "odd": "@when:later", "n": 42}]


def test_removed_and_none_attributes_leave_the_hash(server):
    name = fresh_name()
    driver = RedisDriver(redis_url=server.url)
    table = Table(name, driver, flush_interval_secs=None)
    emit_all([NoSqlTarget(table)], [{"a": 1, "b": 2, "c": 3}], keys=["k"])

    def replace(body, state):
        return body, {"a": state["a"] + 1}

    table2 = Table(name, RedisDriver(redis_url=server.url), flush_interval_secs=None)
    # MapWithState merges its new state into the key's attributes; then `table[key] = ...`
    # replaces them, and a None value removes one
    emit_all([MapWithState(table2, replace, group_by_key=True)], [{}], keys=["k"])
    table2["k"] = {"a": 5, "c": None}
    asyncio.run(table2._flush())
    client = redis.Redis.from_url(server.url)
    assert client.hgetall(f"storey:{name}:{{k}}").keys() == {b"a", b"__version", b"__writer"}
    assert client.hget(f"storey:{name}:{{k}}", "a") == b"5"


def test_attribute_names_of_the_driver_are_refused(server):
    table = Table(fresh_name(), RedisDriver(redis_url=server.url), flush_interval_secs=None)
    with pytest.raises(ValueError, match=r"attribute '__version' of key 'k'.*are the driver's own"):
        emit_all([NoSqlTarget(table)], [{"__version": 9}], keys=["k"])
    table = Table(fresh_name(), RedisDriver(redis_url=server.url), flush_interval_secs=None)
    with pytest.raises(TypeError, match=r"attribute 'x' of key 'k': set \{1\} cannot be stored"):
        emit_all([NoSqlTarget(table)], [{"x": {1}}], keys=["k"])


def test_window_state_survives_a_restart(server):
    name = fresh_name()
    events = [{"k": f"k{i % 3}", "t": T0 + dt.timedelta(minutes=7 * i), "v": i} for i in range(30)]
    first = run_live(Table(name, RedisDriver(redis_url=server.url)), events[:17], _sum_count)
    second = run_live(Table(name, RedisDriver(redis_url=server.url)), events[17:], _sum_count)
    assert first + second == run_live(Table(name, NoopDriver()), events, _sum_count)
    out = query(
        Table(name, RedisDriver(redis_url=server.url)), ["k2", "nobody"], ["x_sum_1h"], events[-1]["t"]
    )
    assert out == [
        {"k": "k2", "t": events[-1]["t"], "x_sum_1h": second[-1]["x_sum_1h"]},
        {"k": "nobody", "t": events[-1]["t"]},
    ]


@pytest.mark.parametrize("parallel, round_trips", [(True, 4), (False, 5)])
def test_a_batch_of_keys_loads_and_flushes_in_one_round_trip_each(server, parallel, round_trips):
    name = fresh_name()
    # the server knows the driver's scripts once any flush ran (a fresh one makes it load them)
    run_live(
        Table(fresh_name(), RedisDriver(redis_url=server.url)), [{"k": "a", "t": T0, "v": 1}], _sum_count
    )
    client = CountingRedis.from_url(server.url)
    frame = pd.DataFrame(
        {"k": [f"k{i % 300}" for i in range(900)], "t": [T0 + dt.timedelta(seconds=i) for i in range(900)]}
    )
    frame["v"] = 1.0
    build_flow(
        [
            DataframeSource(frame, key_field="k", time_field="t"),
            AggregateByKey(_sum_count(), Table(name, RedisDriver(client, use_parallel_operations=parallel))),
        ]
    ).run().await_termination()
    # the aggregator descriptions, the 300 keys of the batch, then the flush: the new description,
    # then the keys (two chunks of keys: in one pipeline, or one after the other)
    assert client.pipelines == round_trips
    assert len(redis.Redis.from_url(server.url).keys(f"storey:{name}:{{*")) == 300


@pytest.mark.parametrize("async_client", [False, True])
def test_every_table_step_over_redis(server, async_client):
    name = fresh_name()
    make = (redis.asyncio.Redis if async_client else redis.Redis).from_url
    table = Table(name, RedisDriver(make(server.url)), flush_interval_secs=None)

    def count_visits(body, state):
        visits = state.get("visits", 0) + 1
        return {**body, "visits": visits}, {**state, "visits": visits}

    out = emit_all(
        [
            NoSqlTarget(table, columns=["name"]),
            MapWithState(table, count_visits, group_by_key=True),
            AggregateByKey(_sum_count(), table),
            JoinWithTable(table, "k", join_function=lambda body, attrs: {**body, "seen": dict(attrs)}),
        ],
        [
            {"k": "a", "name": "ann", "v": 1, "t": T0},
            {"k": "a", "name": "ann", "v": 2, "t": T0 + dt.timedelta(minutes=5)},
        ],
        key_field="k",
        time_field="t",
    )
    assert [body["visits"] for body in out] == [1, 2]
    assert out[-1]["x_sum_1h"] == 3.0 and out[-1]["seen"] == {"name": "ann", "visits": 2}
    # another process (a new driver) sees the attributes and the windows
    other = Table(name, RedisDriver(make(server.url)))
    assert emit_all([JoinWithTable(other, "k")], [{"k": "a"}]) == [{"k": "a", "name": "ann", "visits": 2}]
    assert query(other, ["a"], ["x_sum_1h"], T0 + dt.timedelta(minutes=5)) == [
        {"k": "a", "t": T0 + dt.timedelta(minutes=5), "x_sum_1h": 3.0}
    ]
    asyncio.run(table.close())
    asyncio.run(other.close())


@restart_examples
def test_restart_continues_exactly(server, events, swaps, split, aggregators, policy, first_bulk):
    name = fresh_name()
    assert_restart_continues_exactly(
        lambda: Table(name, RedisDriver(redis_url=server.url)),
        events,
        swaps,
        split,
        aggregators,
        policy,
        first_bulk,
    )


HALF_OF_THE_KEYS = """
import datetime as dt, sys
from storey import Complete, RedisDriver, SyncEmitSource, Table, build_flow, AggregateByKey
from tests.support.restarts import AGGREGATOR_SETS
from tests.test_redis_driver import shared_events
url, name, part = sys.argv[1], sys.argv[2], int(sys.argv[3])
table = Table(name, RedisDriver(redis_url=url), flush_interval_secs=0.05)
aggregators = AGGREGATOR_SETS["sliding, every aggregation"]()
source = SyncEmitSource(key_field="k", time_field="t")
controller = build_flow([source, AggregateByKey(aggregators, table), Complete()]).run()
for body in shared_events():
    if int(body["k"][1:]) % 2 == part:
        controller.emit(body).await_result()
controller.terminate()
controller.await_termination()
"""


def shared_events():
    return [
        {"k": f"k{(i * 7) % 20}", "t": T0 + dt.timedelta(minutes=3 * i), "v": (i * 13) % 17}
        for i in range(200)
    ]


def test_two_processes_each_on_half_of_the_keys_then_a_third_queries_them_all(server):
    name = fresh_name()
    env = {**os.environ, "PYTHONPATH": ROOT}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", HALF_OF_THE_KEYS, server.url, name, str(part)], env=env, cwd=ROOT
        )
        for part in (0, 1)
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    make = AGGREGATOR_SETS["sliding, every aggregation"]
    events = shared_events()
    memory = Table(name, NoopDriver())
    run_live(memory, events, make)
    keys = [f"k{i}" for i in range(20)]
    when = events[-1]["t"] + dt.timedelta(minutes=10)
    features = [name for aggregator in make() for name in aggregator.feature_names()]
    stored = query(Table(name, RedisDriver(redis_url=server.url)), keys, features, when)
    assert comparable(stored) == comparable(query(memory, keys, features, when))
    assert all(len(body) == 2 + len(features) for body in stored)


def test_a_second_writer_of_a_key_fails_naming_it_and_overwrites_nothing(server):
    name = fresh_name()
    run_live(Table(name, RedisDriver(redis_url=server.url)), [{"k": "a", "t": T0, "v": 1}], _sum_count)
    # two live services load key 'a' (each has a key of its own too); the first saves first
    later = T0 + dt.timedelta(minutes=1)
    services = [live_flow(Table(name, RedisDriver(redis_url=server.url))) for _ in range(2)]
    for (flow, _), own, value in zip(services, "bc", (10, 100), strict=True):
        flow.emit({"k": "a", "t": later, "v": value}).await_result()
        flow.emit({"k": own, "t": later, "v": 1}).await_result()
    services[0][0].terminate()
    services[0][0].await_termination()
    services[1][0].terminate()
    with pytest.raises(
        WriteConflictError,
        match=rf"Table '{name}': could not save 2 keys \('a', 'c'\) to RedisDriver.*"
        r"1 key \('a' \(stored version 2, this table's 1\)\) changed by another writer",
    ):
        services[1][0].await_termination()
    out = query(Table(name, RedisDriver(redis_url=server.url)), ["a", "b", "c"], ["x_sum_1h"], later)
    assert [body.get("x_sum_1h") for body in out] == [11.0, 1.0, None]
    # the failed flush's keys stay in the second table: its next flush fails the same way
    with pytest.raises(WriteConflictError):
        asyncio.run(services[1][1]._flush())


def live_flow(table, aggregators=_sum_count):
    """A live flow aggregating into `table`: (controller, table)."""
    flow = build_flow(
        [SyncEmitSource(key_field="k", time_field="t"), AggregateByKey(aggregators(), table), Complete()]
    )
    return flow.run(), table


def test_a_writer_of_its_own_keys_never_conflicts_with_another(server):
    name = fresh_name()
    one = Table(name, RedisDriver(redis_url=server.url), flush_interval_secs=None)
    two = Table(name, RedisDriver(redis_url=server.url), flush_interval_secs=None)
    for minute in range(3):
        when = T0 + dt.timedelta(minutes=minute)
        run_live(one, [{"k": "a", "t": when, "v": 1}], _sum_count)
        run_live(two, [{"k": "b", "t": when, "v": 2}], _sum_count)
    out = query(Table(name, RedisDriver(redis_url=server.url)), ["a", "b"], ["x_sum_1h"], T0)
    assert [body["x_sum_1h"] for body in out] == [3.0, 6.0]


class FaultCountingDriver(RedisDriver):
    """Records the errors the table asks about (each one a retry when transient)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.faults = []

    def _is_transient(self, error):
        self.faults.append(type(error))
        return super()._is_transient(error)


def _moving_events(n, keys):
    """Events whose second half brings new keys, loaded when they first come."""
    return [
        {
            "k": f"k{i % keys if i < n // 2 else keys + i % keys}",
            "t": T0 + dt.timedelta(minutes=3 * i),
            "v": i,
        }
        for i in range(n)
    ]


def _stored_equals_memory(url, name, events):
    keys = sorted({body["k"] for body in events})
    when = events[-1]["t"]
    memory = Table(name, NoopDriver())
    run_live(memory, events, _sum_count)
    features = ["x_sum_1h", "x_count_1h"]
    return query(Table(name, RedisDriver(redis_url=url)), keys, features, when) == query(
        memory, keys, features, when
    )


def test_a_server_restarted_mid_flow_is_waited_for_and_nothing_acknowledged_is_lost(own_server):
    name = fresh_name()
    events = _moving_events(60, 5)
    driver = FaultCountingDriver(redis_url=own_server.url)
    flow, _ = live_flow(Table(name, driver, flush_interval_secs=0.05))
    results = [flow.emit(dict(body)).await_result() for body in events[:30]]
    # the server goes down (saving what it holds, as an orderly restart does) and comes back while
    # the flow loads its next keys and flushes: the table retries, with backoff, until it answers
    own_server.stop(save=True)
    threading.Timer(0.3, own_server.start).start()
    results += [flow.emit(dict(body)).await_result() for body in events[30:]]
    flow.terminate()
    flow.await_termination()
    assert results == run_live(Table(name, NoopDriver()), events, _sum_count)
    assert driver.faults and all(issubclass(fault, redis.ConnectionError) for fault in driver.faults)
    assert _stored_equals_memory(own_server.url, name, events)


def test_a_dropped_connection_is_opened_again(own_server):
    name = fresh_name()
    events = _moving_events(40, 4)
    admin = redis.Redis.from_url(own_server.url)
    table = Table(name, RedisDriver(redis_url=own_server.url), flush_interval_secs=None)
    flow, _ = live_flow(table)
    results = [flow.emit(dict(body)).await_result() for body in events[:20]]
    connections = admin.info("stats")["total_connections_received"]
    assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    results += [flow.emit(dict(body)).await_result() for body in events[20:]]
    flow.terminate()
    flow.await_termination()
    assert admin.info("stats")["total_connections_received"] > connections
    assert results == run_live(Table(name, NoopDriver()), events, _sum_count)
    assert _stored_equals_memory(own_server.url, name, events)


def test_a_timeout_is_retried_and_the_flush_written_once(own_server):
    name = fresh_name()
    events = _moving_events(20, 2)
    admin = redis.Redis.from_url(own_server.url)
    driver = FaultCountingDriver(redis_url=own_server.url + "?socket_timeout=0.2")
    flow, _ = live_flow(Table(name, driver, flush_interval_secs=None))
    results = [flow.emit(dict(body)).await_result() for body in events[:10]]
    # writes wait on the server for a second: each write-through flush times out, is tried again
    admin.client_pause(1000, all=False)
    results += [flow.emit(dict(body)).await_result() for body in events[10:]]
    flow.terminate()
    flow.await_termination()
    assert redis.TimeoutError in driver.faults
    assert results == run_live(Table(name, NoopDriver()), events, _sum_count)
    # a flush that timed out may still have run on the server: written again, it is taken as the
    # same writer's (no conflict) and the stored windows are exact
    assert _stored_equals_memory(own_server.url, name, events)


def test_a_server_down_for_good_fails_naming_the_table_and_keeps_the_changes(own_server):
    name = fresh_name()
    driver = FaultCountingDriver(redis_url=own_server.url)
    driver._backoff_secs = 0.01
    table = Table(name, driver)
    flow, _ = live_flow(table)
    flow.emit({"k": "a", "t": T0, "v": 1}).await_result()
    own_server.stop()
    flow.terminate()
    with pytest.raises(
        redis.exceptions.ConnectionError,
        match=rf"Table '{name}': could not save 1 key \('a'\) to RedisDriver\('{own_server.url}', "
        r"key_prefix='storey:'\) \(tried 6 times\): ConnectionError",
    ):
        flow.await_termination()
    assert driver.faults == [redis.ConnectionError] * driver._retries
    # the changes stay in the table: once the server is back, the next flush saves them
    own_server.start()
    asyncio.run(table._flush())
    assert query(Table(name, RedisDriver(redis_url=own_server.url)), ["a"], ["x_sum_1h"], T0) == [
        {"k": "a", "t": T0, "x_sum_1h": 1.0}
    ]


def test_an_unreachable_server_fails_naming_the_table():
    url = f"redis://127.0.0.1:{free_port()}/0"
    driver = RedisDriver(redis_url=url)
    driver._backoff_secs = 0.01
    with pytest.raises(
        redis.exceptions.ConnectionError,
        match=rf"Table 'profiles': could not load the aggregator descriptions from RedisDriver\('{url}', "
        r"key_prefix='storey:'\) \(tried 6 times\)",
    ):
        run_live(Table("profiles", driver), [{"k": "a", "t": T0, "v": 1}], _sum_count)


def _fifteen_features():
    return [
        FieldAggregator(
            "amount",
            "amount",
            ["sum", "count", "avg", "min", "max"],
            SlidingWindows(["1h", "6h", "24h"], "10m"),
        )
    ]


def test_a_key_keeps_no_bucket_older_than_its_longest_window(server):
    name = fresh_name()
    client = redis.Redis.from_url(server.url)
    sizes = []
    # an event every 10 minutes for two days, in three runs: 12 hours, then 24, then 48
    for start, end in ((0, 72), (72, 144), (144, 288)):
        events = [
            {"k": "u", "t": T0 + dt.timedelta(minutes=10 * i), "amount": 1.0} for i in range(start, end)
        ]
        flow, _ = live_flow(Table(name, RedisDriver(redis_url=server.url)), _fifteen_features)
        for body in events:
            flow.emit(body)
        flow.terminate()
        flow.await_termination()
        sizes.append(client.hstrlen(f"storey:{name}:{{u}}", "__aggr:amount:floats"))
    # the state grows while the longest window fills, then holds 24 hours of buckets, no more
    assert sizes[0] < sizes[1] == sizes[2]


def test_backfill_into_redis_then_a_live_flow_continues(server, tmp_path, capsys):
    from storey.cli import main
    from storey.cli.sample_data import generate_events
    from tests.test_cli import FEATURES, HISTORY, assert_a_live_flow_continues

    df = generate_events(3000, 40, days=2, seed=11).to_pandas()
    df.iloc[:HISTORY].to_parquet(tmp_path / "history.parquet")
    name = fresh_name()
    args = ["backfill", str(tmp_path / "history.parquet"), "--key", "user_id", "--time", "timestamp"]
    args += ["--features", FEATURES, "--out", str(tmp_path / "f.parquet"), "--quiet"]
    assert main([*args, "--table", f"{server.url}#{name}"]) == 0
    assert main([*args, "--table", f"{server.url}#{name}", "--print-flow"]) == 0
    assert f'Table("{name}", RedisDriver(redis_url="{server.url}"))' in capsys.readouterr().out
    from storey.cli.table_urls import parse_table_url

    table = parse_table_url(f"{server.url}#{name}").table(["user_id"])
    assert repr(table._storage) == f"RedisDriver('{server.url}', key_prefix='storey:')"
    assert_a_live_flow_continues(table, df)
