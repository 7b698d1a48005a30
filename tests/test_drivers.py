"""Drivers: NeedsV3ioAccess parameter checks, and V3ioDriver's requests for static attributes,
built against a fake v3io client (how many requests, how many at a time); test_v3io_tables.py runs
the driver through the real client against the V3IO emulator."""

import asyncio
import datetime as dt

import numpy as np
import pytest

from storey import JoinWithTable, Table, V3ioDriver
from storey.drivers import Driver, NeedsV3ioAccess
from storey.drivers.v3io_driver import split_v3io_path
from storey.dtypes import V3ioError
from storey.targets import NoSqlTarget
from tests.support.step_runs import KINDS, run_collected


@pytest.fixture
def no_v3io_env(monkeypatch):
    monkeypatch.delenv("V3IO_API", raising=False)
    monkeypatch.delenv("V3IO_ACCESS_KEY", raising=False)


def test_access_from_parameters(no_v3io_env):
    access = NeedsV3ioAccess(webapi="https://host:8081", access_key="key")
    assert (access._webapi_url, access._access_key) == ("https://host:8081", "key")
    # an address without a scheme is taken as http
    assert NeedsV3ioAccess(webapi="host:8081", access_key="key")._webapi_url == "http://host:8081"


def test_access_from_environment(monkeypatch):
    monkeypatch.setenv("V3IO_API", "envhost:80")
    monkeypatch.setenv("V3IO_ACCESS_KEY", "envkey")
    access = NeedsV3ioAccess()
    assert (access._webapi_url, access._access_key) == ("http://envhost:80", "envkey")
    access = NeedsV3ioAccess(webapi="http://other", access_key="other-key")
    assert (access._webapi_url, access._access_key) == ("http://other", "other-key")


@pytest.mark.parametrize(
    "kwargs, missing",
    [
        ({}, "webapi parameter or V3IO_API"),
        ({"access_key": "key"}, "webapi parameter or V3IO_API"),
        ({"webapi": "http://host"}, "access_key parameter or V3IO_ACCESS_KEY"),
        ({"webapi": "", "access_key": ""}, "webapi parameter or V3IO_API"),
    ],
)
def test_missing_access(no_v3io_env, kwargs, missing):
    with pytest.raises(ValueError, match=f"Missing {missing}"):
        NeedsV3ioAccess(**kwargs)
    with pytest.raises(ValueError, match=f"Missing {missing}"):
        V3ioDriver(**kwargs)


def test_bad_access_types(no_v3io_env):
    with pytest.raises(TypeError, match="webapi must be a string"):
        NeedsV3ioAccess(webapi=5, access_key="key")
    with pytest.raises(TypeError, match="v3io_client_kwargs must be a dict"):
        V3ioDriver("http://host", "key", v3io_client_kwargs=[1])


def test_driver_does_not_connect_before_use(no_v3io_env):
    driver = V3ioDriver(
        "http://host", "key", use_parallel_operations=False, v3io_client_kwargs={"max_connections": 2}
    )
    assert driver._clients == {}
    assert isinstance(driver, Driver) and isinstance(driver, NeedsV3ioAccess)


def test_real_client_is_built_from_the_parameters(no_v3io_env):
    driver = V3ioDriver("http://host:8081", "key", v3io_client_kwargs={"max_connections": 3})

    async def main():
        client = driver._client()
        assert client is driver._client()
        assert client._access_key == "key"
        await driver.close()

    asyncio.run(main())
    assert driver._clients == {}


def test_each_event_loop_gets_its_own_client():
    driver = _driver(FakeKV())

    async def client():
        return driver._client()

    assert asyncio.run(client()) is not asyncio.run(client())


@pytest.mark.parametrize(
    "path, expected",
    [
        ("bigdata/my/table", ("bigdata", "/my/table")),
        ("/bigdata/table/", ("bigdata", "/table")),
        ("v3io:///bigdata/table", ("bigdata", "/table")),
        ("bigdata", ("bigdata", "/")),
    ],
)
def test_table_paths(path, expected):
    assert split_v3io_path(path) == expected


class _Output:
    def __init__(self, item):
        self.item = item


class _Response:
    def __init__(self, status_code, item=None, body=b""):
        self.status_code = status_code
        self.output = _Output(item)
        self.body = body


class FakeKV:
    """The part of the v3io client's kv model the driver uses, over a dict of items."""

    def __init__(self, items=None, status=None):
        self.items = items or {}
        self.status = status
        self.requests = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def _request(self, request):
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.001)
        self.in_flight -= 1

    async def get(
        self, container, table_path, key, access_key=None, raise_for_status=None, attribute_names="*"
    ):
        await self._request(("get", container, table_path, key))
        if self.status is not None:
            return _Response(self.status, body=b"server error")
        item = self.items.get((container, table_path, key))
        return _Response(404) if item is None else _Response(200, dict(item))

    async def update(
        self,
        container,
        table_path,
        key,
        access_key=None,
        raise_for_status=None,
        attributes=None,
        expression=None,
        condition=None,
        update_mode=None,
        alternate_expression=None,
    ):
        await self._request(("update", container, table_path, key, attributes, expression))
        if self.status is not None:
            return _Response(self.status, body=b"server error")
        item = self.items.setdefault((container, table_path, key), {})
        if attributes:
            item.update(attributes)
        return _Response(204)


class FakeClient:
    def __init__(self, kv):
        self.kv = kv
        self.closed = False

    async def close(self):
        self.closed = True


def _driver(kv, **kwargs):
    driver = V3ioDriver("http://host", "key", **kwargs)
    driver.clients = []

    def create_client():
        driver.clients.append(FakeClient(kv))
        return driver.clients[-1]

    driver._create_client = create_client
    return driver


def test_load_gets_every_key_of_a_batch():
    kv = FakeKV({("bigdata", "/profiles", "u1"): {"name": "N1", "aggr_x": [1, 2], "_x": 5}})
    table = Table("bigdata/profiles", _driver(kv))
    asyncio.run(table._ensure_loaded(["u1", ["u", 2], "u1"]))
    assert sorted(kv.requests) == [
        ("get", "bigdata", "/profiles", "u.2"),
        ("get", "bigdata", "/profiles", "u1"),
    ]
    # attributes holding aggregation state are not static attributes
    assert table._get_static("u1") == {"name": "N1"}
    assert table._get_static(["u", 2]) is None


def test_save_updates_attributes_and_removes_dropped_ones():
    kv = FakeKV()
    table = Table("/bigdata/profiles", _driver(kv))
    when = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    table._update_static("u1", {"n": np.int64(3), "x": np.float64(0.5), "when": when, "s": "a"})
    table._set_static(7, {"n": 1})
    asyncio.run(table._flush())
    assert sorted(kv.requests, key=str) == [
        ("update", "bigdata", "/profiles", "7", {"n": 1}, None),
        ("update", "bigdata", "/profiles", "u1", {"n": 3, "x": 0.5, "when": when, "s": "a"}, None),
    ]
    # numpy scalars reach the client as Python values it can encode
    assert type(kv.requests[0][4]["n"]) is int
    kv.requests.clear()
    table._set_static("u1", {"s": "b"})
    asyncio.run(table._flush())
    assert sorted(kv.requests, key=str) == [
        ("update", "bigdata", "/profiles", "u1", None, "REMOVE `n`; REMOVE `when`; REMOVE `x`"),
        ("update", "bigdata", "/profiles", "u1", {"s": "b"}, None),
    ]


@pytest.mark.parametrize("parallel, limit", [(True, 3), (False, 8)])
def test_requests_in_flight(parallel, limit):
    kv = FakeKV()
    table = Table("bigdata/t", _driver(kv, use_parallel_operations=parallel), max_updates_in_flight=limit)
    for i in range(10):
        table._update_static(f"k{i}", {"a": i})
    asyncio.run(table._flush())
    assert len(kv.requests) == 10
    assert kv.max_in_flight == (limit if parallel else 1)


def test_failed_requests_raise_v3io_error():
    kv = FakeKV(status=400)
    table = Table("bigdata/t", _driver(kv))
    with pytest.raises(
        V3ioError, match="Failed to get item 'k' of table bigdata/t: status 400: server error"
    ):
        asyncio.run(table._ensure_loaded(["k"]))
    table._update_static("k", {"a": 1})
    with pytest.raises(V3ioError, match="Failed to save item 'k' of table bigdata/t: status 400"):
        asyncio.run(table._flush())
    # what could not be saved is saved by the next flush
    kv.status = None
    asyncio.run(table._flush())
    assert kv.items == {("bigdata", "/t", "k"): {"a": 1}}


def test_close_closes_the_client():
    kv = FakeKV()
    driver = _driver(kv)

    async def main():
        client = driver._client()
        await driver.close()
        await driver.close()
        return client

    assert asyncio.run(main()).closed


@pytest.mark.parametrize("source", KINDS)
def test_flows_over_a_v3io_table(source):
    kv = FakeKV({("bigdata", "/profiles", "u0"): {"name": "stored"}})
    table = Table("bigdata/profiles", _driver(kv), flush_interval_secs=None)
    run_collected(
        source, [NoSqlTarget(table, columns=["name"])], [({"name": "N1"}, "u1"), ({"name": "N2"}, "u2")]
    )
    assert kv.items[("bigdata", "/profiles", "u1")] == {"name": "N1"}
    # a second table on the same storage reads what the first one wrote
    fresh = Table("bigdata/profiles", _driver(kv))
    out = run_collected(source, [JoinWithTable(fresh, "uid")], [{"uid": "u0"}, {"uid": "u2"}, {"uid": "u9"}])
    assert out == [{"uid": "u0", "name": "stored"}, {"uid": "u2", "name": "N2"}, {"uid": "u9"}]
    # the connections of a flow are closed when it terminates
    clients = table._storage.clients + fresh._storage.clients
    assert clients and all(client.closed for client in clients)
