"""StreamTarget through the real v3io client against the V3IO emulator (what is written: records,
their shards and requests, read back in order per shard; how failures end the flow; faults
survived, each record written once), and TSDBTarget against a fake v3io-frames client (the
emulator serves no TSDB): its DataFrames and their index, when they are written."""

import base64
import datetime as dt
import json
import random
import sys
import time
import types

import numpy as np
import pandas as pd
import pytest

from storey import Complete, DataframeSource, Event, NoopDriver, SyncEmitSource, V3ioDriver, build_flow
from storey.dtypes import V3ioError
from storey.targets import StreamTarget, TSDBTarget
from tests.support.engine import T0
from tests.support.step_runs import KINDS, run_collected


# ---- what StreamTarget sends the emulator, and what the stream holds
class Streams:
    """The stream requests the emulator received, and the streams it holds."""

    def __init__(self, emulator):
        self.emulator = emulator

    def _requests(self, operation):
        return [
            (path.strip("/"), json.loads(body) if body else None)
            for _, path, seen, body in self.emulator.requests
            if seen == operation
        ]

    def creates(self):
        """(path, shard count, retention hours) of each CreateStream request."""
        return [
            (path, body["ShardCount"], body["RetentionPeriodHours"])
            for path, body in self._requests("CreateStream")
        ]

    def puts(self):
        """The records of each PutRecords request: dicts with shard_id and data (text)."""
        return [
            [
                {"shard_id": r["ShardId"], "data": base64.b64decode(r["Data"]).decode()}
                for r in body["Records"]
            ]
            for _, body in self._requests("PutRecords")
        ]

    def records(self):
        """(shard, data) of every record put, in the order of the requests."""
        return [(r["shard_id"], r["data"]) for records in self.puts() for r in records]

    def bodies(self):
        return [json.loads(data) for _, data in self.records()]

    def stored(self, path="bigdata/my/stream"):
        """[[record data (text), ...] per shard] the stream holds, in order."""
        return [[data.decode() for data in shard] for shard in self.emulator.records(path)]


@pytest.fixture
def streams(v3io_emulator):
    return Streams(v3io_emulator)


def stream_driver(streams):
    driver = V3ioDriver(streams.emulator.url, "key")
    driver._backoff_secs = 0.01
    return driver


def stream_target(streams, path="bigdata/my/stream", **kwargs):
    return StreamTarget(stream_driver(streams), path, **kwargs)


# ---- StreamTarget: records
@pytest.mark.parametrize("source", KINDS)
def test_records_are_json_of_the_columns_and_events_pass_on(streams, source):
    target = stream_target(streams, columns=["a", "x=b", "$key", "t=$time", "$id"])
    events = [
        Event({"b": 1, "a": 2}, key="k0", id="id0", time=T0),
        Event({"c": 3, "a": None}, key="k1", id="id1", time=T0 + dt.timedelta(minutes=1)),
    ]
    out = run_collected(source, [target], events)
    assert out == [{"b": 1, "a": 2}, {"c": 3, "a": None}]
    assert streams.creates() == [("bigdata/my/stream", 1, 24)]
    # fields an event lacks or holds as None are left out; times are written as their text
    assert streams.stored() == [
        [
            '{"a": 2, "x": 1, "key": "k0", "t": "2020-07-21 21:40:00+00:00", "id": "id0"}',
            '{"key": "k1", "t": "2020-07-21 21:41:00+00:00", "id": "id1"}',
        ]
    ]


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        # inferred from the first event, sorted; fields the first event lacks are not written
        ({}, [{"a": 2, "b": 1}, {"a": 4}]),
        ({"columns": []}, [{"a": 2, "b": 1}, {"a": 4}]),
        # explicit columns and inferred ones, sorted by name; an explicit one wins a clash
        (
            {"columns": ["b=a", "$key"], "infer_columns_from_data": True},
            [{"a": 2, "b": 2, "key": "k0"}, {"a": 4, "b": 4, "key": "k1"}],
        ),
        ({"columns": ["b", "a"]}, [{"b": 1, "a": 2}, {"a": 4}]),
        # no columns and no inference: empty records, as storey 1.0.6 writes
        ({"infer_columns_from_data": False}, [{}, {}]),
    ],
)
def test_columns_written(streams, kwargs, expected):
    run_collected(
        "sync", [stream_target(streams, **kwargs)], [({"b": 1, "a": 2}, "k0"), ({"a": 4, "c": 3}, "k1")]
    )
    assert streams.bodies() == expected
    assert [list(body) for body in streams.bodies()] == [list(body) for body in expected]


def test_values_json_cannot_hold_are_written_as_text(streams):
    body = {
        "d": dt.datetime(2020, 1, 1),
        "f": float("nan"),
        "l": [1, {"n": None}],
        "s": {1},
        "u": "ü",
        "y": b"x",
    }
    run_collected("sync", [stream_target(streams)], [body])
    assert streams.stored() == [
        [
            '{"d": "2020-01-01 00:00:00", "f": NaN, "l": [1, {"n": null}], '
            '"s": "{1}", "u": "\\u00fc", "y": "b\'x\'"}'
        ]
    ]


def test_text_and_bytes_bodies_are_written_as_they_are(streams):
    run_collected("sync", [stream_target(streams)], ["plain", b"raw"])
    assert streams.emulator.records("bigdata/my/stream") == [[b"plain", b"raw"]]


@pytest.mark.parametrize("source", KINDS)
@pytest.mark.parametrize(
    "kwargs, bad",
    [({}, [1, 2]), ({}, 5), ({}, None), ({"columns": ["a"]}, "text"), ({"columns": ["a"]}, [1])],
)
def test_a_body_that_cannot_be_written_fails_the_flow(streams, source, kwargs, bad):
    first = {"a": 1} if kwargs else "ok"
    with pytest.raises(TypeError, match="StreamTarget: cannot write an event body of type"):
        run_collected(source, [stream_target(streams, **kwargs)], [first, bad])
    # the event before it was written
    assert len(streams.records()) == 1


def test_list_bodies_cannot_infer_columns(streams):
    with pytest.raises(TypeError, match="Cannot infer_columns_from_data when event type is list"):
        run_collected("sync", [stream_target(streams)], [[1, 2]])
    assert streams.records() == []


def test_column_bodies_are_written_without_rows(streams):
    df = pd.DataFrame(
        {
            "k": ["a", "b"],
            "i": [1, 2],
            "f": [1.5, np.nan],
            "t": pd.to_datetime(["2020-01-01 00:00:00", "2020-01-02 03:04:05.123456"], format="ISO8601"),
            "s": ["x", None],
        }
    )
    for i, (kwargs, expected) in enumerate(
        [
            (
                {},
                [
                    '{"f": 1.5, "i": 1, "k": "a", "s": "x", "t": "2020-01-01 00:00:00"}',
                    '{"f": NaN, "i": 2, "k": "b", "t": "2020-01-02 03:04:05.123456"}',
                ],
            ),
            (
                {"columns": ["$key", "when=$time", "i"]},
                [
                    '{"key": "a", "when": "2020-01-01 00:00:00", "i": 1}',
                    '{"key": "b", "when": "2020-01-02 03:04:05.123456", "i": 2}',
                ],
            ),
        ]
    ):
        path = f"bigdata/columns{i}"
        flow = build_flow(
            [DataframeSource(df, key_field="k", time_field="t"), stream_target(streams, path, **kwargs)]
        )
        flow.run().await_termination()
        assert streams.stored(path) == [expected]


# ---- StreamTarget: shards and requests
def test_sharding_func_chooses_each_records_shard(streams):
    keys = []

    def shard_of(event):
        assert isinstance(event, Event)
        keys.append(event.key)
        return event.body["a"]

    target = stream_target(streams, sharding_func=shard_of, shard_count=3, batch_size=100)
    items = [({"a": a}, f"k{i}") for i, a in enumerate([0, 1, 4, -1, 5, 3])]
    run_collected("sync", [target], items)
    assert keys == ["k0", "k1", "k2", "k3", "k4", "k5"]
    assert streams.creates() == [("bigdata/my/stream", 3, 24)]
    # the shard is the function's result modulo shard_count; each shard keeps the events' order
    assert streams.stored() == [['{"a": 0}', '{"a": 3}'], ['{"a": 1}', '{"a": 4}'], ['{"a": -1}', '{"a": 5}']]
    for records in streams.puts():
        assert len({r["shard_id"] for r in records}) == 1


def test_each_request_holds_at_most_batch_size_records_of_one_shard(streams):
    df = pd.DataFrame({"a": range(20)})
    target = stream_target(streams, sharding_func=lambda e: e.body["a"] % 2, shard_count=2, batch_size=4)
    build_flow([DataframeSource(df), target]).run().await_termination()
    by_shard = {}
    for records in streams.puts():
        (shard,) = {r["shard_id"] for r in records}
        by_shard.setdefault(shard, []).append([json.loads(r["data"])["a"] for r in records])
    assert by_shard == {
        0: [[0, 2, 4, 6], [8, 10, 12, 14], [16, 18]],
        1: [[1, 3, 5, 7], [9, 11, 13, 15], [17, 19]],
    }


@pytest.mark.parametrize("source", KINDS)
def test_live_requests_respect_batch_size(streams, source):
    run_collected(source, [stream_target(streams, batch_size=3)], [{"a": i} for i in range(20)])
    assert [json.loads(data)["a"] for data in streams.stored()[0]] == list(range(20))
    assert all(1 <= len(records) <= 3 for records in streams.puts())


def test_default_shard_is_random(streams):
    df = pd.DataFrame({"a": range(400)})
    build_flow([DataframeSource(df), stream_target(streams, shard_count=4)]).run().await_termination()
    stored = streams.stored()
    assert sum(map(len, stored)) == 400 and len(stored) == 4
    assert sum(1 for shard in stored if shard) > 1
    run_collected("sync", [stream_target(streams, "bigdata/one")], [{"a": 1}, {"a": 2}])
    assert streams.stored("bigdata/one") == [['{"a": 1}', '{"a": 2}']]


@pytest.mark.parametrize(
    "fn, error",
    [
        (lambda e: "x", TypeError),
        (lambda e: None, TypeError),
        (lambda e: 1 / 0 if e.body["a"] else 0, ZeroDivisionError),
    ],
)
def test_a_failing_sharding_func_fails_the_flow(streams, fn, error):
    target = stream_target(streams, sharding_func=fn, shard_count=2)
    with pytest.raises(error):
        run_collected("sync", [target], [{"a": 0}, {"a": 1}])
    if error is ZeroDivisionError:
        assert streams.bodies() == [{"a": 0}]


def test_records_are_written_before_the_event_completes(streams):
    controller = build_flow([SyncEmitSource(), stream_target(streams), Complete()]).run()
    assert controller.emit({"a": 1}).await_result() == {"a": 1}
    assert streams.stored() == [['{"a": 1}']]
    controller.terminate()
    controller.await_termination()


def test_retention_and_shard_count_of_a_new_stream(streams):
    target = stream_target(streams, "v3io:///projects/p/stream", shard_count=2, retention_period_hours=5)
    assert run_collected("async", [target], []) == []
    # a flow without events creates the stream, and closes its client
    assert streams.creates() == [("projects/p/stream", 2, 5)]
    assert streams.emulator.namespace.describe_stream("projects/p/stream") == {
        "ShardCount": 2,
        "RetentionPeriodHours": 5,
    }
    assert target._storage._clients == {}


def test_an_existing_stream_is_written_to(streams):
    streams.emulator.namespace.create_stream("bigdata/my/stream", {"ShardCount": 1})
    run_collected("sync", [stream_target(streams)], [{"a": 1}])
    assert streams.stored() == [['{"a": 1}']]


@pytest.mark.parametrize("source", KINDS)
def test_a_stream_that_cannot_be_created_fails_the_flow(streams, source):
    streams.emulator.inject("error", operations=["CreateStream"], times=None, status=500)
    with pytest.raises(
        V3ioError, match=r"Failed to create stream bigdata/my/stream: status 500: .* \(tried 6 times\)"
    ):
        run_collected(source, [stream_target(streams)], [{"a": 1}])
    assert streams.puts() == []


def test_a_put_the_platform_refuses_fails_the_flow(streams):
    target = stream_target(streams, sharding_func=lambda e: 3, shard_count=2)
    streams.emulator.namespace.create_stream("bigdata/my/stream", {"ShardCount": 1})
    with pytest.raises(
        V3ioError, match=r"shard 1 of stream bigdata/my/stream: status 400: .*ShardIDOutOfRangeException"
    ):
        run_collected("sync", [target], [{"a": 1}])
    assert target._storage._clients == {}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"storage": NoopDriver()}, TypeError, "StreamTarget: storage must be a V3ioDriver"),
        ({"storage": None}, TypeError, "storage must be a V3ioDriver"),
        ({"stream_path": ""}, TypeError, "stream_path must be a non-empty string"),
        ({"stream_path": None}, TypeError, "stream_path must be a non-empty string"),
        ({"stream_path": "container"}, ValueError, "names no stream"),
        ({"sharding_func": 5}, TypeError, "sharding_func must be callable"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive int, got 0"),
        ({"batch_size": None}, TypeError, "batch_size must be a positive int"),
        ({"shard_count": -1}, ValueError, "shard_count must be a positive int, got -1"),
        ({"shard_count": "2"}, TypeError, "shard_count must be a positive int"),
        ({"shard_count": 2.0}, TypeError, "shard_count must be a positive int"),
        ({"retention_period_hours": 0}, ValueError, "retention_period_hours must be a positive int"),
        ({"columns": ["$foo"]}, ValueError, "unknown metadata '\\$foo'"),
        ({"columns": [5]}, TypeError, "columns entries must be non-empty strings"),
        ({"storage_options": "x"}, TypeError, "storage_options must be a dict"),
    ],
)
def test_bad_stream_parameters(kwargs, error, match):
    params = {"storage": V3ioDriver("http://host", "key"), "stream_path": "bigdata/s", **kwargs}
    with pytest.raises(error, match=match):
        StreamTarget(**params)


def test_stream_parameter_names_and_defaults():
    target = StreamTarget(
        V3ioDriver("http://host", "key"), "/bigdata/s/", name="out", retention_period_hours=None
    )
    assert target.name == "out"
    assert (target._container, target._path, target._batch_size, target._shard_count) == (
        "bigdata",
        "/s",
        8,
        1,
    )
    assert target._retention_period_hours is None and target._may_suspend


# ---- StreamTarget: faults
def _write(streams, events, shard_count, batch_size, source="sync", retries=None):
    """Writes `events` ({"i": n, "s": shard}) through a StreamTarget; returns the ids acknowledged
    (passed on) and the error that ended the flow, if any."""
    driver = stream_driver(streams)
    if retries is not None:
        driver._retries = retries
    target = StreamTarget(
        driver,
        "bigdata/my/stream",
        sharding_func=lambda e: e.body["s"],
        shard_count=shard_count,
        batch_size=batch_size,
    )
    acknowledged = []
    try:
        run_collected(source, [target, _Acknowledge(acknowledged)], events)
    except V3ioError as ex:
        return acknowledged, ex
    return acknowledged, None


class _Acknowledge:
    def __new__(cls, into):
        from storey import Map

        return Map(lambda body: into.append(body["i"]) or body)


def _per_shard(streams, shard_count):
    stored = streams.stored()
    return [[json.loads(data)["i"] for data in shard] for shard in stored] + [[]] * (
        shard_count - len(stored)
    )


@pytest.mark.parametrize("kind", ["drop", "drop_after", "error", "throttle_records", "stall"])
def test_records_outlive_faults_each_written_once(streams, kind):
    """N events to 3 shards; faults at random points of the requests; every record is written
    once, in order within its shard."""
    n, shard_count = 300, 3
    rng = random.Random(5)
    events = [{"i": i, "s": rng.randrange(shard_count)} for i in range(n)]
    operations = (
        ["PutRecords"]
        if kind == "throttle_records"
        else ["PutRecords", "SeekShard", "GetRecords", "CreateStream"]
    )
    fault = streams.emulator.inject(
        kind, operations=operations, times=6, probability=0.4, seed=11, seconds=0.3
    )
    driver_timeout = 0.1 if kind == "stall" else None
    if driver_timeout:
        V3ioDriver._request_timeout_secs, saved = driver_timeout, V3ioDriver._request_timeout_secs
    try:
        acknowledged, error = _write(streams, events, shard_count, batch_size=7)
    finally:
        if driver_timeout:
            V3ioDriver._request_timeout_secs = saved
    assert error is None and fault.fired == 6
    assert sorted(acknowledged) == list(range(n))
    expected = [[e["i"] for e in events if e["s"] == shard] for shard in range(shard_count)]
    # 0 lost, 0 duplicated, each shard in order
    assert _per_shard(streams, shard_count) == expected


def test_records_past_the_budget_fail_the_flow_saying_how_many_were_not_written(streams):
    driver = stream_driver(streams)
    driver._retries = 2
    flow = build_flow([SyncEmitSource(), StreamTarget(driver, "bigdata/my/stream"), Complete()]).run()
    # the platform takes the first 2 requests, then is down for good
    streams.emulator.inject("error", operations=["PutRecords"], after=2, times=None, status=503)
    acknowledged = [flow.emit({"i": i}).await_result()["i"] for i in range(2)]
    with pytest.raises(
        V3ioError,
        match=r"StreamTarget: 1 of the 1 records of events for shard 0 were not written to stream "
        r"bigdata/my/stream \(the events before them were\): Failed to put 1 records to stream "
        r"bigdata/my/stream: 1 of them were not written after 3 attempts \(status 503",
    ):
        flow.emit({"i": 2}).await_result()
    flow.terminate()
    with pytest.raises(V3ioError):
        flow.await_termination()
    # what was acknowledged is in the stream, once; nothing after it
    assert acknowledged == [0, 1]
    assert _per_shard(streams, 1) == [[0, 1]]


def test_a_put_without_answer_is_not_written_twice(streams):
    """The platform writes the records but the connection drops before it answers, every time for
    a while: the writer finds them in the shard instead of writing them again."""
    events = [{"i": i, "s": i % 2} for i in range(40)]
    fault = streams.emulator.inject("drop_after", operations=["PutRecords"], times=5)
    acknowledged, error = _write(streams, events, shard_count=2, batch_size=4)
    assert error is None and fault.fired == 5
    assert _per_shard(streams, 2) == [list(range(0, 40, 2)), list(range(1, 40, 2))]
    # the records carry the writer's tags, which it reads back from the shards
    assert any(operation == "GetRecords" for _, _, operation, _ in streams.emulator.requests)


# ---- TSDBTarget
class FakeFrames:
    """A v3io-frames client: records create() and write() calls."""

    def __init__(self, error=None):
        self.calls = []
        self.error = error

    def create(self, backend, table, **kwargs):
        self.calls.append(("create", backend, table, kwargs))

    def write(self, backend, table, dfs):
        if self.error is not None:
            raise self.error
        self.calls.append(("write", backend, table, dfs))

    def frames(self):
        return [call[3] for call in self.calls if call[0] == "write"]


def tsdb(frames, path="bigdata/metrics/cpu", **kwargs):
    return TSDBTarget(path, frames_client=frames, **kwargs)


def naive(*seconds):
    return pd.DatetimeIndex([dt.datetime(2020, 1, 1, 0, 0, s) for s in seconds], name="time").as_unit("ns")


def emit_naive(target, bodies, source="sync"):
    """Events at 2020-01-01 00:00:0i (naive), keys k<i>, ids id<i>; returns what passed on."""
    items = [
        Event(b, key=f"k{i}", id=f"id{i}", time=dt.datetime(2020, 1, 1, 0, 0, i))
        for i, b in enumerate(bodies)
    ]
    return run_collected(source, [target], items)


@pytest.mark.parametrize("source", KINDS)
def test_events_are_written_as_one_frame_indexed_by_time(source):
    frames = FakeFrames()
    bodies = [{"b": 1, "a": 2, "s": "x", "ok": True}, {"a": 4, "s": None, "ok": False}]
    assert emit_naive(tsdb(frames), bodies, source) == bodies
    (call,) = frames.calls
    assert call[:3] == ("write", "tsdb", "/metrics/cpu")
    expected = pd.DataFrame(
        {
            "a": np.array([2, 4]),
            "b": np.array([1.0, np.nan]),
            "ok": np.array([True, False]),
            "s": pd.Series(["x", None], dtype=object),
        }
    )
    expected.index = naive(0, 1)
    pd.testing.assert_frame_equal(call[3], expected)


def test_aware_times_keep_their_zone():
    frames = FakeFrames()
    run_collected("sync", [tsdb(frames, columns=["a"])], [{"a": 1}])
    (frame,) = frames.frames()
    assert str(frame.index.dtype) == "datetime64[ns, UTC]"
    assert list(frame.index) == [pd.Timestamp(T0)]


def test_missing_values_stay_in_their_column():
    # storey 1.0.6 moves the values after a missing one into the columns before
    frames = FakeFrames()
    emit_naive(tsdb(frames, columns=["x=b", "a", "i=$id", "$key"]), [{"b": 1, "a": 2}, {"b": 3, "a": None}])
    (frame,) = frames.frames()
    assert list(frame.columns) == ["x", "a", "i", "key"]
    assert frame.to_dict("list") == {
        "x": [1, 3],
        "a": [2.0, pytest.approx(np.nan, nan_ok=True)],
        "i": ["id0", "id1"],
        "key": ["k0", "k1"],
    }
    assert str(frame["a"].dtype) == "float64" and frame["i"].dtype == object


@pytest.mark.parametrize(
    "kwargs, names, columns",
    [
        ({"index_cols": "$key"}, ["time", "key"], ["a", "b"]),
        ({"index_cols": ["b", "k=$key"]}, ["time", "b", "k"], ["a"]),
        ({"columns": ["a", "b"], "index_cols": ["b"], "infer_columns_from_data": True}, ["time", "b"], ["a"]),
        ({"time_col": "when=$time", "columns": ["a"]}, ["when"], ["a"]),
    ],
)
def test_index_columns(kwargs, names, columns):
    frames = FakeFrames()
    emit_naive(tsdb(frames, **kwargs), [{"b": 1, "a": 2}, {"b": 3, "a": 4}])
    (frame,) = frames.frames()
    assert list(frame.index.names) == names and list(frame.columns) == columns
    assert list(frame.index.get_level_values(0)) == list(naive(0, 1))
    if "key" in names:
        assert list(frame.index.get_level_values("key")) == ["k0", "k1"]
        assert frame.index.get_level_values("key").dtype == object


def test_time_column_from_the_body():
    frames = FakeFrames()
    bodies = [{"ts": dt.datetime(2021, 1, 1), "a": 2}, {"ts": dt.datetime(2021, 1, 2), "a": 4}]
    emit_naive(tsdb(frames, time_col="ts"), bodies)
    (frame,) = frames.frames()
    assert list(frame.columns) == ["a"] and frame.index.name == "ts"
    assert list(frame.index) == [pd.Timestamp("2021-01-01"), pd.Timestamp("2021-01-02")]
    with pytest.raises(ValueError, match="TSDBTarget: an event has no time column 'ts'"):
        emit_naive(tsdb(FakeFrames(), time_col="ts"), [{"a": 1}])


def test_list_bodies_fill_the_index_columns_then_the_others():
    frames = FakeFrames()
    emit_naive(tsdb(frames, columns=["a", "b", "$key"], index_cols=["c"]), [[3, 1, 2]])
    (frame,) = frames.frames()
    assert list(frame.index.names) == ["time", "c"] and list(frame.index[0]) == [
        pd.Timestamp("2020-01-01"),
        3,
    ]
    assert frame.to_dict("list") == {"a": [1], "b": [2], "key": ["k0"]}


def test_no_columns_without_inference_writes_the_index_only():
    frames = FakeFrames()
    emit_naive(tsdb(frames, infer_columns_from_data=False), [{"a": 1}])
    (frame,) = frames.frames()
    assert list(frame.columns) == [] and list(frame.index) == list(naive(0))


@pytest.mark.parametrize("bad", [5, "text", None])
def test_a_body_that_is_not_a_dict_or_list_fails_the_flow(bad):
    with pytest.raises(TypeError, match="TSDBTarget: Writer supports only events of type dict or list"):
        emit_naive(tsdb(FakeFrames(), columns=["a"]), [bad])
    with pytest.raises(TypeError):
        emit_naive(tsdb(FakeFrames()), [bad])


def test_column_bodies_are_typed_as_their_columns():
    frames = FakeFrames()
    df = pd.DataFrame(
        {
            "k": ["a", "b", "a"],
            "i": [1, 2, 3],
            "f": [1.5, np.nan, 2.0],
            "t": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"]).tz_localize("Europe/Paris"),
            "ok": [True, False, True],
            "s": ["x", None, "z"],
            "u": np.array([1, 2, 3], dtype=np.uint8),
        }
    )
    target = tsdb(frames, index_cols=["$key"], max_events=2)
    build_flow([DataframeSource(df, key_field="k", time_field="t"), target]).run().await_termination()
    first, second = frames.frames()
    assert len(first) == 2 and len(second) == 1
    assert str(first.index.levels[0].dtype) == "datetime64[ns, Europe/Paris]"
    assert list(first.index.get_level_values("key")) == ["a", "b"]
    assert {c: str(t) for c, t in first.dtypes.items()} == {
        "f": "float64",
        "i": "int64",
        "k": "object",
        "ok": "bool",
        "s": "object",
        "t": "datetime64[ns, Europe/Paris]",
        "u": "int64",
    }
    assert first["s"].tolist() == ["x", None] and second["f"].tolist() == [2.0]


@pytest.mark.parametrize("source", KINDS)
def test_max_events_and_key_batch_the_writes(source):
    frames = FakeFrames()
    emit_naive(tsdb(frames, max_events=2), [{"a": i} for i in range(5)], source)
    assert [f["a"].tolist() for f in frames.frames()] == [[0, 1], [2, 3], [4]]
    frames = FakeFrames()
    target = tsdb(frames, max_events=2, key="$key")
    items = [Event({"a": i}, key=f"k{i % 2}", time=T0) for i in range(5)]
    run_collected(source, [target], items)
    assert [f["a"].tolist() for f in frames.frames()] == [[0, 2], [1, 3], [4]]


@pytest.mark.parametrize("param", ["timeout_secs", "flush_after_seconds"])
def test_held_events_are_written_after_the_timeout(param):
    frames = FakeFrames()
    controller = build_flow([SyncEmitSource(), tsdb(frames, **{param: 0.1})]).run()
    controller.emit({"a": 1}, event_time=T0)
    deadline = time.monotonic() + 5
    while not frames.frames() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [f["a"].tolist() for f in frames.frames()] == [[1]]
    controller.emit({"a": 2}, event_time=T0)
    controller.terminate()
    controller.await_termination()
    assert [f["a"].tolist() for f in frames.frames()] == [[1], [2]]


def test_the_table_is_created_before_the_first_write_when_rate_is_given():
    frames = FakeFrames()
    target = tsdb(
        frames, "/bigdata/metrics/cpu", rate="1/s", aggr="sum,count", aggr_granularity="1h", max_events=1
    )
    emit_naive(target, [{"a": 1}, {"a": 2}])
    assert [call[0] for call in frames.calls] == ["create", "write", "write"]
    assert frames.calls[0] == (
        "create",
        "tsdb",
        "/metrics/cpu",
        {"if_exists": 1, "rate": "1/s", "aggregates": "sum,count", "aggregation_granularity": "1h"},
    )
    frames = FakeFrames()
    emit_naive(tsdb(frames), [{"a": 1}])
    assert [call[0] for call in frames.calls] == ["write"]
    frames = FakeFrames()
    emit_naive(tsdb(frames, rate="1/s"), [])
    assert frames.calls == []


@pytest.mark.parametrize("source", KINDS)
def test_a_failing_write_fails_the_flow(source):
    frames = FakeFrames(error=ConnectionError("frames is down"))
    with pytest.raises(ConnectionError, match="frames is down"):
        emit_naive(tsdb(frames, max_events=1), [{"a": 1}, {"a": 2}], source)


def test_a_frames_client_is_made_from_the_parameters(monkeypatch):
    made = []

    class Client:
        def __init__(self, **kwargs):
            made.append(kwargs)

        def create(self, *args, **kwargs):
            pass

        def write(self, *args, **kwargs):
            pass

    monkeypatch.setitem(sys.modules, "v3io_frames", types.SimpleNamespace(Client=Client))
    TSDBTarget("v3io:///bigdata/metrics/cpu", v3io_frames="frames:8081", access_key="secret")
    TSDBTarget("bigdata/cpu")
    assert made == [
        {"address": "frames:8081", "token": "secret", "container": "bigdata"},
        {"address": None, "token": None, "container": "bigdata"},
    ]


def test_without_v3io_frames_a_client_must_be_given(monkeypatch):
    monkeypatch.setitem(sys.modules, "v3io_frames", None)
    with pytest.raises(ImportError, match="TSDBTarget: writing to TSDB needs the v3io-frames package"):
        TSDBTarget("bigdata/cpu")
    assert TSDBTarget("bigdata/cpu", frames_client=FakeFrames()).name == "TSDBTarget"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"path": ""}, TypeError, "TSDBTarget: path must be a non-empty string"),
        ({"path": "bigdata"}, ValueError, "names no table"),
        ({"time_col": None}, TypeError, "time_col must be a non-empty string"),
        ({"time_col": "$foo"}, ValueError, "unknown metadata"),
        ({"index_cols": 5}, TypeError, "index_cols must be a list"),
        ({"columns": [("a", "int")]}, TypeError, "columns entries must be strings"),
        ({"max_events": 0}, ValueError, "max_events must be a positive int"),
        ({"max_events": "x"}, TypeError, "max_events must be a positive int"),
        ({"flush_after_seconds": -1}, ValueError, "flush_after_seconds must be a positive number"),
        ({"flush_after_seconds": 1, "timeout_secs": 2}, ValueError, "are the same setting"),
        ({"key": "$time"}, ValueError, "key must be '\\$key' or a body field name"),
        ({"rate": 5}, TypeError, "rate must be a string"),
        ({"access_key": 5}, TypeError, "access_key must be a string"),
        ({"frames_client": 5}, TypeError, "frames_client must be a v3io-frames client"),
        ({"storage_options": 5}, TypeError, "storage_options must be a dict"),
    ],
)
def test_bad_tsdb_parameters(kwargs, error, match):
    params = {"path": "bigdata/cpu", "frames_client": FakeFrames(), **kwargs}
    with pytest.raises(error, match=match):
        TSDBTarget(**params)
