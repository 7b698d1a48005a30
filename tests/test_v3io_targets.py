"""StreamTarget and TSDBTarget, against fake clients (there is no V3IO server here): what is
written (records and their shards, DataFrames and their index), when, and how failures end the
flow. One test runs StreamTarget through the real v3io client against a local HTTP server."""

import asyncio
import base64
import datetime as dt
import json
import sys
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from storey import Complete, DataframeSource, Event, NoopDriver, SyncEmitSource, V3ioDriver, build_flow
from storey.dtypes import V3ioError
from storey.targets import StreamTarget, TSDBTarget
from tests.support.engine import T0
from tests.support.step_runs import KINDS, run_collected


# ---- a fake v3io client: the stream requests StreamTarget makes
class _PutOutput:
    def __init__(self, failed):
        self.failed_record_count = failed


class _Response:
    def __init__(self, status_code, failed=0, body=b""):
        self.status_code = status_code
        self.output = _PutOutput(failed)
        self.body = body


class FakeStreams:
    """The stream part of the v3io client; records each request."""

    def __init__(self, create_status=204, put_status=200, failed=0):
        self.create_status = create_status
        self.put_status = put_status
        self.failed = failed
        self.requests = []

    async def create(
        self,
        container,
        stream_path,
        shard_count,
        access_key=None,
        raise_for_status=None,
        retention_period_hours=None,
    ):
        self.requests.append(("create", container, stream_path, shard_count, retention_period_hours))
        await asyncio.sleep(0)
        return _Response(self.create_status, body=b"create refused")

    async def put_records(self, container, stream_path, records, access_key=None, raise_for_status=None):
        self.requests.append(("put", container, stream_path, [dict(r) for r in records]))
        await asyncio.sleep(0)
        return _Response(self.put_status, self.failed, body=b"put refused")

    def puts(self):
        return [request[3] for request in self.requests if request[0] == "put"]

    def records(self):
        """(shard, data) of every record put, in order."""
        return [(r["shard_id"], r["data"]) for records in self.puts() for r in records]

    def bodies(self):
        return [json.loads(data) for _, data in self.records()]


class FakeClient:
    def __init__(self, streams):
        self.stream = streams
        self.closed = False

    async def close(self):
        self.closed = True


def stream_driver(streams):
    driver = V3ioDriver("http://host", "key")
    driver.clients = []

    def create_client():
        driver.clients.append(FakeClient(streams))
        return driver.clients[-1]

    driver._create_client = create_client
    return driver


def stream_target(streams, path="bigdata/my/stream", **kwargs):
    return StreamTarget(stream_driver(streams), path, **kwargs)


# ---- StreamTarget: records
@pytest.mark.parametrize("source", KINDS)
def test_records_are_json_of_the_columns_and_events_pass_on(source):
    streams = FakeStreams()
    target = stream_target(streams, columns=["a", "x=b", "$key", "t=$time", "$id"])
    events = [
        Event({"b": 1, "a": 2}, key="k0", id="id0", time=T0),
        Event({"c": 3, "a": None}, key="k1", id="id1", time=T0 + dt.timedelta(minutes=1)),
    ]
    out = run_collected(source, [target], events)
    assert out == [{"b": 1, "a": 2}, {"c": 3, "a": None}]
    assert streams.requests[0] == ("create", "bigdata", "/my/stream", 1, 24)
    # fields an event lacks or holds as None are left out; times are written as their text
    assert streams.records() == [
        (0, '{"a": 2, "x": 1, "key": "k0", "t": "2020-07-21 21:40:00+00:00", "id": "id0"}'),
        (0, '{"key": "k1", "t": "2020-07-21 21:41:00+00:00", "id": "id1"}'),
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
def test_columns_written(kwargs, expected):
    streams = FakeStreams()
    run_collected(
        "sync", [stream_target(streams, **kwargs)], [({"b": 1, "a": 2}, "k0"), ({"a": 4, "c": 3}, "k1")]
    )
    assert streams.bodies() == expected
    assert [list(body) for body in streams.bodies()] == [list(body) for body in expected]


def test_values_json_cannot_hold_are_written_as_text():
    streams = FakeStreams()
    body = {
        "d": dt.datetime(2020, 1, 1),
        "f": float("nan"),
        "l": [1, {"n": None}],
        "s": {1},
        "u": "ü",
        "y": b"x",
    }
    run_collected("sync", [stream_target(streams)], [body])
    assert streams.records() == [
        (
            0,
            '{"d": "2020-01-01 00:00:00", "f": NaN, "l": [1, {"n": null}], '
            '"s": "{1}", "u": "\\u00fc", "y": "b\'x\'"}',
        )
    ]


def test_text_and_bytes_bodies_are_written_as_they_are():
    streams = FakeStreams()
    run_collected("sync", [stream_target(streams)], ["plain", b"raw"])
    assert streams.records() == [(0, "plain"), (0, b"raw")]


@pytest.mark.parametrize("source", KINDS)
@pytest.mark.parametrize(
    "kwargs, bad",
    [({}, [1, 2]), ({}, 5), ({}, None), ({"columns": ["a"]}, "text"), ({"columns": ["a"]}, [1])],
)
def test_a_body_that_cannot_be_written_fails_the_flow(source, kwargs, bad):
    streams = FakeStreams()
    first = {"a": 1} if kwargs else "ok"
    with pytest.raises(TypeError, match="StreamTarget: cannot write an event body of type"):
        run_collected(source, [stream_target(streams, **kwargs)], [first, bad])
    # the event before it was written
    assert len(streams.records()) == 1


def test_list_bodies_cannot_infer_columns():
    streams = FakeStreams()
    with pytest.raises(TypeError, match="Cannot infer_columns_from_data when event type is list"):
        run_collected("sync", [stream_target(streams)], [[1, 2]])
    assert streams.records() == []


def test_column_bodies_are_written_without_rows():
    df = pd.DataFrame(
        {
            "k": ["a", "b"],
            "i": [1, 2],
            "f": [1.5, np.nan],
            "t": pd.to_datetime(["2020-01-01 00:00:00", "2020-01-02 03:04:05.123456"], format="ISO8601"),
            "s": ["x", None],
        }
    )
    for kwargs, expected in [
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
    ]:
        streams = FakeStreams()
        flow = build_flow(
            [DataframeSource(df, key_field="k", time_field="t"), stream_target(streams, **kwargs)]
        )
        flow.run().await_termination()
        assert [data for _, data in streams.records()] == expected


# ---- StreamTarget: shards and requests
def test_sharding_func_chooses_each_records_shard():
    streams = FakeStreams()
    keys = []

    def shard_of(event):
        assert isinstance(event, Event)
        keys.append(event.key)
        return event.body["a"]

    target = stream_target(streams, sharding_func=shard_of, shard_count=3, batch_size=100)
    items = [({"a": a}, f"k{i}") for i, a in enumerate([0, 1, 4, -1, 5, 3])]
    run_collected("sync", [target], items)
    assert keys == ["k0", "k1", "k2", "k3", "k4", "k5"]
    assert streams.requests[0] == ("create", "bigdata", "/my/stream", 3, 24)
    # the shard is the function's result modulo shard_count; each shard keeps the events' order
    by_shard = {}
    for shard, data in streams.records():
        by_shard.setdefault(shard, []).append(json.loads(data)["a"])
    assert by_shard == {0: [0, 3], 1: [1, 4], 2: [-1, 5]}
    for records in streams.puts():
        assert len({r["shard_id"] for r in records}) == 1


def test_each_request_holds_at_most_batch_size_records_of_one_shard():
    streams = FakeStreams()
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
def test_live_requests_respect_batch_size(source):
    streams = FakeStreams()
    run_collected(source, [stream_target(streams, batch_size=3)], [{"a": i} for i in range(20)])
    assert [body["a"] for body in streams.bodies()] == list(range(20))
    assert all(1 <= len(records) <= 3 for records in streams.puts())


def test_default_shard_is_random():
    streams = FakeStreams()
    df = pd.DataFrame({"a": range(400)})
    build_flow([DataframeSource(df), stream_target(streams, shard_count=4)]).run().await_termination()
    shards = [shard for shard, _ in streams.records()]
    assert len(shards) == 400 and set(shards) <= {0, 1, 2, 3}
    assert len(set(shards)) > 1
    streams = FakeStreams()
    run_collected("sync", [stream_target(streams)], [{"a": 1}, {"a": 2}])
    assert [shard for shard, _ in streams.records()] == [0, 0]


@pytest.mark.parametrize(
    "fn, error",
    [
        (lambda e: "x", TypeError),
        (lambda e: None, TypeError),
        (lambda e: 1 / 0 if e.body["a"] else 0, ZeroDivisionError),
    ],
)
def test_a_failing_sharding_func_fails_the_flow(fn, error):
    streams = FakeStreams()
    target = stream_target(streams, sharding_func=fn, shard_count=2)
    with pytest.raises(error):
        run_collected("sync", [target], [{"a": 0}, {"a": 1}])
    if error is ZeroDivisionError:
        assert streams.bodies() == [{"a": 0}]


def test_records_are_written_before_the_event_completes():
    streams = FakeStreams()
    controller = build_flow([SyncEmitSource(), stream_target(streams), Complete()]).run()
    assert controller.emit({"a": 1}).await_result() == {"a": 1}
    assert streams.bodies() == [{"a": 1}]
    controller.terminate()
    controller.await_termination()


def test_a_flow_without_events_creates_the_stream_and_closes_the_client():
    streams = FakeStreams()
    target = stream_target(streams, "v3io:///projects/p/stream", shard_count=2, retention_period_hours=5)
    assert run_collected("async", [target], []) == []
    assert streams.requests == [("create", "projects", "/p/stream", 2, 5)]
    driver = target._storage
    assert len(driver.clients) == 1 and driver.clients[0].closed


def test_an_existing_stream_is_written_to():
    streams = FakeStreams(create_status=409)
    run_collected("sync", [stream_target(streams)], [{"a": 1}])
    assert streams.bodies() == [{"a": 1}]


@pytest.mark.parametrize("source", KINDS)
def test_a_stream_that_cannot_be_created_fails_the_flow(source):
    streams = FakeStreams(create_status=500)
    with pytest.raises(
        V3ioError, match="Failed to create stream bigdata/my/stream: status 500: create refused"
    ):
        run_collected(source, [stream_target(streams)], [{"a": 1}])
    assert streams.puts() == []


@pytest.mark.parametrize("status, failed", [(500, 0), (200, 1)])
def test_a_refused_put_fails_the_flow(status, failed):
    streams = FakeStreams(put_status=status, failed=failed)
    target = stream_target(streams)
    # (how many records one put holds depends on how the emitting thread and the flow's loop meet)
    with pytest.raises(
        V3ioError, match=rf"Failed to put [12] records to stream bigdata/my/stream: status {status}"
    ):
        run_collected("sync", [target], [{"a": 1}, {"a": 2}])
    assert target._storage.clients[0].closed


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
    params = {"storage": stream_driver(FakeStreams()), "stream_path": "bigdata/s", **kwargs}
    with pytest.raises(error, match=match):
        StreamTarget(**params)


def test_stream_parameter_names_and_defaults():
    target = StreamTarget(
        stream_driver(FakeStreams()), "/bigdata/s/", name="out", retention_period_hours=None
    )
    assert target.name == "out"
    assert (target._container, target._path, target._batch_size, target._shard_count) == (
        "bigdata",
        "/s",
        8,
        1,
    )
    assert target._retention_period_hours is None and target._may_suspend


# ---- StreamTarget through the real v3io client
class _V3ioHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        function = self.headers.get("X-v3io-function")
        self.server.requests.append((self.command, self.path, function, json.loads(body) if body else None))
        if function == "PutRecords":
            count = len(json.loads(body)["Records"])
            payload = json.dumps(
                {"FailedRecordCount": 0, "Records": [{"SequenceNumber": i} for i in range(count)]}
            )
            status = 200
        else:
            payload, status = "", 204
        data = payload.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def v3io_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _V3ioHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_real_client_requests(v3io_server):
    driver = V3ioDriver(f"http://127.0.0.1:{v3io_server.server_address[1]}", "key")
    target = StreamTarget(driver, "bigdata/my/stream", sharding_func=lambda e: e.body["a"], shard_count=2)
    run_collected("sync", [target], [{"a": 1}, {"a": 2}, {"a": 3}])
    requests = v3io_server.requests
    method, path, function, _ = requests[0]
    assert (method, path.lstrip("/"), function) == ("POST", "bigdata/my/stream/", "CreateStream")
    assert requests[0][3] == {"ShardCount": 2, "RetentionPeriodHours": 24}
    records = [
        (record["ShardId"], base64.b64decode(record["Data"]).decode())
        for method, path, function, body in requests[1:]
        if function == "PutRecords"
        for record in body["Records"]
    ]
    assert sorted(records) == [(0, '{"a": 2}'), (1, '{"a": 1}'), (1, '{"a": 3}')]


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
