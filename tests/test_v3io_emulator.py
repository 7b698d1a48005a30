"""The V3IO emulator (storey.testing.v3io), through the v3io client: what it stores and answers for
key-value items (and the expressions storey 1.0.6's driver sends), objects and streams, its
errors for malformed requests, its faults, and how it runs (in a thread, in a process, as a
pytest fixture)."""

import base64
import datetime as dt
import json
import socket
import urllib.error
import urllib.request

import pytest
import v3io.dataplane
from v3io.dataplane.transport import RaiseForStatus

from storey import V3ioDriver
from storey.testing.v3io import EmulatorProcess, V3ioEmulator
from storey.testing.v3io.faults import Fault
from storey.testing.v3io.typed_values import Array, Timestamp

NEVER = RaiseForStatus.never


@pytest.fixture
def client(v3io_emulator):
    made = v3io.dataplane.Client(endpoint=v3io_emulator.url, access_key="key")
    yield made
    made.close()


def error_of(response):
    return response.status_code, json.loads(response.body)["ErrorCode"]


# ---- key-value items
def test_items_keep_typed_attributes(client):
    when = dt.datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=dt.UTC)
    attributes = {"i": 7, "f": 1.5, "s": "text", "b": True, "t": when, "blob": b"\x00\xff", "arr": [1.0, 2.5]}
    client.kv.put("bigdata", "/table", "key", attributes)
    item = client.kv.get("bigdata", "/table", "key").output.item
    assert item == attributes
    # attribute selection, system attributes among them
    item = client.kv.get("bigdata", "/table", "key", attribute_names=["i", "__name", "missing"]).output.item
    assert item == {"i": 7, "__name": "key"}
    response = client.kv.get("bigdata", "/table", "other", raise_for_status=NEVER)
    assert error_of(response) == (404, -2)


def test_updates_merge_attributes_and_puts_replace_the_item(client):
    client.kv.put("bigdata", "/t", "k", {"a": 1, "b": 2})
    client.kv.update("bigdata", "/t", "k", attributes={"b": 3, "c": 4})
    assert client.kv.get("bigdata", "/t", "k").output.item == {"a": 1, "b": 3, "c": 4}
    client.kv.put("bigdata", "/t", "k", {"z": 0})
    assert client.kv.get("bigdata", "/t", "k").output.item == {"z": 0}


def test_the_update_expressions_storey_sends(client, v3io_emulator):
    # as storey 1.0.6's driver writes aggregation arrays and static attributes
    blob = base64.b64encode(Array("double", [2.0, 5.0]).to_bytes()).decode()
    expression = (
        "aggr_x_sum_a=if_else((if_not_exists(_x_a,0:0)<1704067200:0),init_array(4,'double',0.0),aggr_x_sum_a);"
        "aggr_x_sum_a[1]=if_else((if_not_exists(_x_a,0:0)>1704067200:0),aggr_x_sum_a[1],aggr_x_sum_a[1]+4.5);"
        "aggr_x_min_a=init_array(4,'double',inf);aggr_x_min_a[0]=min(aggr_x_min_a[0], 3.0);"
        "aggr_x_first_a=init_array(4,'double',nan);"
        "aggr_x_first_a[2]=if_else(isnan(aggr_x_first_a[2]), 9.0, aggr_x_first_a[2]);"
        f"aggr_x_sum_a[2..3]=psum(aggr_x_sum_a[2..3], blob('{blob}'));"
        "_x_a=if_else((if_not_exists(_x_a,0:0)<1704067200:0),1704067200:0,_x_a);"
        "name='ann';`min`=5;flag=True;REMOVE gone"
    )
    client.kv.put("bigdata", "/t", "k", {"gone": 1})
    client.kv.update("bigdata", "/t", "k", expression=expression, condition="")
    item = v3io_emulator.items("bigdata/t")["k"]
    assert item["aggr_x_sum_a"] == Array("double", [0.0, 4.5, 2.0, 5.0])
    assert item["aggr_x_min_a"].values[:2] == [3.0, float("inf")]
    assert item["aggr_x_first_a"].values[2] == 9.0
    assert item["_x_a"] == Timestamp(1704067200, 0)
    assert (item["name"], item["min"], item["flag"]) == ("ann", 5, True) and "gone" not in item
    # storey's test of parallel operations: a temporary array, compared and deleted
    test = "a=init_array(2,'double',0.0);a[0..1]=pmax(a[0..1], a[0..1]);delete(a);"
    assert client.kv.update("bigdata", "/t", "k", expression=test, condition="").status_code == 200
    assert "a" not in v3io_emulator.items("bigdata/t")["k"]


def test_conditions(client):
    response = client.kv.update("bigdata", "/t", "k", attributes={"n": 1})
    verifier = response.headers["X-v3io-transaction-verifier"]
    assert verifier.startswith("__mtime_secs==") and " and __mtime_nsecs==" in verifier
    # true until the item changes
    assert client.kv.update("bigdata", "/t", "k", expression="n=n+1", condition=verifier).status_code == 200
    refused = client.kv.update(
        "bigdata", "/t", "k", expression="n=n+1", condition=verifier, raise_for_status=NEVER
    )
    assert error_of(refused) == (400, 16777244)
    # the alternate expression runs instead when the condition is false
    client.kv.update(
        "bigdata", "/t", "k", expression="n=100", condition="n > 5", alternate_expression="n=n*10"
    )
    assert client.kv.get("bigdata", "/t", "k").output.item == {"n": 20}
    # a missing attribute makes a comparison false
    refused = client.kv.update(
        "bigdata", "/t", "k", expression="n=0", condition="nothing == 1", raise_for_status=NEVER
    )
    assert refused.status_code == 400


def test_get_items_select_filter_and_page(client):
    for i in range(7):
        client.kv.put("bigdata", "/people", f"p{i}", {"age": 20 + i, "name": f"n{i}"})
    client.object.put("bigdata", "/people/.schema", body=b"{}")
    response = client.kv.scan(
        "bigdata", "/people/", attribute_names=["name"], filter_expression="age >= 23 and starts(name, 'n')"
    )
    assert sorted(item["name"] for item in response.output.items) == ["n3", "n4", "n5", "n6"]
    # pages of Limit items, the last marked, hidden files (.schema) left out
    names, marker = [], None
    while True:
        output = client.kv.scan(
            "bigdata", "/people/", attribute_names=["__name"], limit=3, marker=marker
        ).output
        names += [item["__name"] for item in output.items]
        if output.last:
            break
        marker = output.next_marker
    assert names == [f"p{i}" for i in range(7)]


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"expression": "a="}, -22),
        ({"expression": "a = b + 1"}, -22),  # b does not exist
        ({"expression": "arr[5]=1"}, -22),  # out of bounds
        ({"expression": "__mtime_secs=1"}, -22),
        ({"expression": "a=1", "condition": "a = 1"}, -22),
        ({"expression": "a=init_array(2,'text',0)"}, -22),
        ({"expression": "x='unterminated"}, -22),
    ],
)
def test_malformed_updates_get_the_platforms_error(client, kwargs, code):
    client.kv.put("bigdata", "/t", "k", {"arr": [1.0, 2.0]})
    response = client.kv.update("bigdata", "/t", "k", raise_for_status=NEVER, **kwargs)
    assert error_of(response) == (400, code)
    assert client.kv.get("bigdata", "/t", "k").output.item == {"arr": [1.0, 2.0]}


def _raw(v3io_emulator, method, path, function=None, body=b"", key="key"):
    headers = {"Content-Type": "application/json"}
    if function:
        headers["X-v3io-function"] = function
    if key:
        headers["X-v3io-session-key"] = key
    request = urllib.request.Request(f"{v3io_emulator.url}{path}", data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as ex:
        return ex.code, json.loads(ex.read())


@pytest.mark.parametrize(
    "args, status, code",
    [
        (("PUT", "/bigdata/t/k", "PutItem", b"not json"), 400, -22),
        (("PUT", "/bigdata/t/k", "PutItem", b'{"Item": {"a": {"X": "1"}}}'), 400, -22),
        (("PUT", "/bigdata/t/k", "PutItem", b'{"Item": {"a": {"N": "one"}}}'), 400, -22),
        (("PUT", "/bigdata/t/k", "PutItem", b'{"Item": {"__name": {"S": "x"}}}'), 400, -22),
        (("PUT", "/bigdata/t/k", "PutItem", b"{}"), 400, -22),
        (("PUT", "/bigdata/t/k", "Frobnicate", b"{}"), 400, -22),
        (("PUT", "/bigdata/t/k/deeper", "PutItem", b'{"Item": {}}'), 400, -20),
        (("POST", "/bigdata/s/", "CreateStream", b'{"ShardCount": 0}'), 400, -201326592),
        (("POST", "/bigdata/none/", "PutRecords", b'{"Records": [{"Data": "YQ=="}]}'), 404, -201326593),
    ],
)
def test_malformed_requests_get_the_platforms_error(v3io_emulator, args, status, code):
    _raw(v3io_emulator, "PUT", "/bigdata/t/k", "PutItem", b'{"Item": {"a": {"N": "1"}}}')
    got_status, body = _raw(v3io_emulator, *args)
    assert (got_status, body["ErrorCode"]) == (status, code)


def test_every_request_needs_an_access_key(v3io_emulator):
    assert _raw(v3io_emulator, "PUT", "/bigdata/t/k", "GetItem", b"{}", key=None)[0] == 401
    with V3ioEmulator(access_key="secret") as locked:
        assert _raw(locked, "PUT", "/bigdata/t/k", "GetItem", b"{}", key="other")[0] == 401
        assert _raw(locked, "PUT", "/bigdata/t/k", "GetItem", b"{}", key="secret")[0] == 404


# ---- objects
def test_objects(client):
    client.object.put("bigdata", "/dir/obj", body="hello")
    client.object.put("bigdata", "/dir/obj", body=" world", append=True)
    assert client.object.get("bigdata", "/dir/obj").body == b"hello world"
    assert client.object.get("bigdata", "/dir/obj", offset=6, num_bytes=3).body == b"wor"
    client.object.delete("bigdata", "/dir/obj")
    assert client.object.get("bigdata", "/dir/obj", raise_for_status=NEVER).status_code == 404


# ---- streams
def test_streams_keep_records_in_order_per_shard(client):
    assert client.stream.create("bigdata", "/s", 3, retention_period_hours=2).status_code == 204
    again = client.stream.create("bigdata", "/s", 3, raise_for_status=NEVER)
    assert again.status_code == 409
    output = client.stream.describe("bigdata", "/s").output
    assert (output.shard_count, output.retention_period_hours) == (3, 2)
    records = [{"data": f"r{i}", "shard_id": i % 2} for i in range(5)]
    records += [
        {"data": "by-key", "partition_key": "user-1"},
        {"data": "any"},
        {"data": "bad", "shard_id": 7},
    ]
    output = client.stream.put_records("bigdata", "/s", records, raise_for_status=NEVER).output
    assert output.failed_record_count == 1
    assert [(r.shard_id, r.sequence_number) for r in output.records[:5]] == [
        (0, 1),
        (1, 1),
        (0, 2),
        (1, 2),
        (0, 3),
    ]
    assert output.records[7].error_code == -201326594

    def read(shard, seek_type="EARLIEST", **kwargs):
        location = client.stream.seek("bigdata", "/s", shard, seek_type, **kwargs).output.location
        out = []
        while True:
            got = client.stream.get_records("bigdata", "/s", shard, location, limit=2).output
            out += [(record.sequence_number, record.data) for record in got.records]
            if not got.records:
                return out
            location = got.next_location

    assert [data for _, data in read(0)][:3] == [b"r0", b"r2", b"r4"]
    assert [data for _, data in read(1)][:2] == [b"r1", b"r3"]
    assert read(0, "SEQUENCE", starting_sequence_number=2)[0] == (2, b"r2")
    assert read(0, "LATEST") == []
    assert read(0, "TIME", timestamp_sec=0, timestamp_nsec=0)[0] == (1, b"r0")
    shard_of_key = [shard for shard in range(3) if b"by-key" in [data for _, data in read(shard)]]
    assert len(shard_of_key) == 1
    response = client.stream.get_records("bigdata", "/s", 1, "bm90IGEgbG9jYXRpb24=", raise_for_status=NEVER)
    assert response.status_code == 400 and b"IllegalLocation" in response.body


def test_records_older_than_the_retention_are_dropped():
    now = [10**18]
    with V3ioEmulator(clock=lambda: now[0]) as emulator:
        client = v3io.dataplane.Client(endpoint=emulator.url, access_key="key")
        client.stream.create("bigdata", "/s", 1, retention_period_hours=1)
        client.stream.put_records("bigdata", "/s", [{"data": "old", "shard_id": 0}])
        now[0] += 3600 * 10**9 + 1
        client.stream.put_records("bigdata", "/s", [{"data": "new", "shard_id": 0}])
        location = client.stream.seek("bigdata", "/s", 0, "EARLIEST").output.location
        records = client.stream.get_records("bigdata", "/s", 0, location).output.records
        client.close()
    assert [record.data for record in records] == [b"new"]


# ---- faults
def test_faults_act_after_and_for_as_long_as_asked(client, v3io_emulator):
    fault = v3io_emulator.inject("error", operations=["GetItem"], after=1, times=2, status=503)
    client.kv.put("bigdata", "/t", "k", {"a": 1})
    statuses = [client.kv.get("bigdata", "/t", "k", raise_for_status=NEVER).status_code for _ in range(4)]
    assert statuses == [200, 503, 503, 200]
    assert (fault.seen, fault.fired) == (4, 2)


def test_a_dropped_request_is_not_carried_out_and_a_drop_after_is(v3io_emulator):
    import asyncio

    import v3io.aio.dataplane

    async def put(value):
        client = v3io.aio.dataplane.Client(endpoint=v3io_emulator.url, access_key="key", retry_intervals=(0,))
        try:
            # (UpdateItem is a POST, which the HTTP client does not send again by itself)
            await client.kv.update("bigdata", "/t", "k", expression=f"a={value}")
        finally:
            await client.close()

    asyncio.run(put(1))
    for kind, value, stored in [("drop", 2, 1), ("drop_after", 3, 3)]:
        v3io_emulator.inject(kind, operations=["UpdateItem"])
        with pytest.raises(Exception, match="Server disconnected|Connection"):
            asyncio.run(put(value))
        assert v3io_emulator.items("bigdata/t")["k"] == {"a": stored}


def test_throttled_records_are_refused_one_by_one(client, v3io_emulator):
    client.stream.create("bigdata", "/s", 2)
    v3io_emulator.inject("throttle_records", operations=["PutRecords"], seed=3)
    records = [{"data": f"r{i}", "shard_id": i % 2} for i in range(20)]
    output = client.stream.put_records("bigdata", "/s", records).output
    refused = [i for i, record in enumerate(output.records) if record.error_code is not None]
    assert output.failed_record_count == len(refused) > 0
    # from a record on, a shard refuses the rest of the request: what it took is in order
    stored = v3io_emulator.records("bigdata/s")
    for shard in range(2):
        taken = [i for i in range(shard, 20, 2) if i not in refused]
        assert taken == list(range(shard, 20, 2))[: len(taken)]
        assert stored[shard] == [f"r{i}".encode() for i in taken]


def test_bad_faults_are_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        Fault("explode")
    with pytest.raises(ValueError, match="status must be a 5xx or 429"):
        Fault("error", status=404)
    with pytest.raises(ValueError, match="probability must be in"):
        Fault("drop", probability=0)


# ---- running it
def _port_is_free(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_in_its_own_process_driven_by_control_requests():
    with EmulatorProcess() as emulator:
        client = v3io.dataplane.Client(endpoint=emulator.url, access_key="key")
        client.kv.put("bigdata", "/t", "k", {"a": 1})
        emulator.inject("error", operations=["GetItem"], times=1, status=500)
        assert client.kv.get("bigdata", "/t", "k", raise_for_status=NEVER).status_code == 500
        assert client.kv.get("bigdata", "/t", "k").output.item == {"a": 1}
        assert [request["operation"] for request in emulator.requests] == ["PutItem", "GetItem", "GetItem"]
        emulator.reset()
        assert client.kv.get("bigdata", "/t", "k", raise_for_status=NEVER).status_code == 404
        client.close()
        port = emulator.port
    assert _port_is_free(port)


def test_the_fixture_points_storey_at_the_emulator(v3io_env):
    driver = V3ioDriver()
    assert driver._webapi_url == v3io_env.url
