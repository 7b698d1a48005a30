"""V3ioDriver: tables in V3IO key-value storage, and the V3IO access its targets share."""

import asyncio
import datetime
import functools
import os

import numpy as np

from ..dtypes.event import V3ioError
from .driver import Driver, StoredKey

__all__ = ["NeedsV3ioAccess", "V3ioDriver", "split_v3io_path"]


def _non_empty(value):
    return value if isinstance(value, str) and value else None


class NeedsV3ioAccess:
    """Checks that params for access to V3IO exist and are legal

    :param webapi: URL to the web API (https or http). If not set, the V3IO_API environment
        variable will be used. A URL without a scheme is taken as http.
    :param access_key: V3IO access key. If not set, the V3IO_ACCESS_KEY environment variable will
        be used.
    """

    def __init__(self, webapi=None, access_key=None):
        for param, value in (("webapi", webapi), ("access_key", access_key)):
            if value is not None and not isinstance(value, str):
                raise TypeError(
                    f"{type(self).__name__}: {param} must be a string, got {type(value).__name__}: {value!r}"
                )
        webapi = _non_empty(webapi) or _non_empty(os.getenv("V3IO_API"))
        if not webapi:
            raise ValueError("Missing webapi parameter or V3IO_API environment variable")
        if not webapi.startswith(("http://", "https://")):
            webapi = f"http://{webapi}"
        access_key = _non_empty(access_key) or _non_empty(os.getenv("V3IO_ACCESS_KEY"))
        if not access_key:
            raise ValueError("Missing access_key parameter or V3IO_ACCESS_KEY environment variable")
        self._webapi_url = webapi
        self._access_key = access_key


def split_v3io_path(path):
    """(container, path inside the container) of a table path: 'container/dir/table',
    '/container/dir/table' or 'v3io:///container/dir/table'."""
    for prefix in ("v3io:///", "v3io://"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    path = path.lstrip("/")
    container, _, inner = path.partition("/")
    if not container:
        raise ValueError(f"V3ioDriver: table path {path!r} names no container")
    return container, "/" + inner.strip("/")


def v3io_value(value):
    """`value` as a type the v3io client can store (Python scalars, datetimes, lists, bytes)."""
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64):
            return datetime.datetime.fromtimestamp(
                int(value.astype("datetime64[ns]").astype(np.int64)) / 1e9, datetime.UTC
            )
        return value.item()
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        return value.to_pydatetime()
    return value


def _item_name(key):
    return key if isinstance(key, str) else str(key)


def _remove_expression(names):
    return "; ".join(f"REMOVE `{name}`" for name in sorted(names))


class V3ioDriver(NeedsV3ioAccess, Driver):
    """Database connection to V3IO.

    Each table is a V3IO key-value table: one item per key, named by the key (list keys joined
    with '.'), whose attributes are the key's static attributes. A table path is
    'container/path/to/table' (or '/container/...' or 'v3io:///container/...').

    :param webapi: URL to the web API (https or http). If not set, the V3IO_API environment
        variable will be used.
    :param access_key: V3IO access key. If not set, the V3IO_ACCESS_KEY environment variable will
        be used.
    :param use_parallel_operations: whether the requests for a batch of keys run concurrently (up
        to the table's max_updates_in_flight at a time) or one after another. Defaults to True.
    :param v3io_client_kwargs: extra keyword arguments for the v3io client
        (`v3io.aio.dataplane.Client`). Optional.
    """

    # names of attributes that hold aggregation state, which static attributes leave out
    _aggregation_attribute_prefix = "aggr_"
    _aggregation_time_attribute_prefix = "_"

    def __init__(
        self,
        webapi: str | None = None,
        access_key: str | None = None,
        use_parallel_operations=True,
        v3io_client_kwargs=None,
    ):
        super().__init__(webapi, access_key)
        if v3io_client_kwargs is not None and not isinstance(v3io_client_kwargs, dict):
            raise TypeError(
                "V3ioDriver: v3io_client_kwargs must be a dict, got "
                f"{type(v3io_client_kwargs).__name__}: {v3io_client_kwargs!r}"
            )
        self._parallel_ops = bool(use_parallel_operations)
        self._v3io_client_kwargs = dict(v3io_client_kwargs or {})
        # event loop -> client: each flow run may have its own loop (streams), and tables use the
        # driver's own loop (see AsyncBridge); a client's connections belong to its loop
        self._clients = {}

    def _create_client(self):
        import v3io.aio.dataplane

        return v3io.aio.dataplane.Client(
            endpoint=self._webapi_url, access_key=self._access_key, **self._v3io_client_kwargs
        )

    def _client(self):
        """The client for the running event loop."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._create_client()
        return client

    # ---- tables: static attributes; the windows of a V3IO table are kept in memory only
    def _load_keys(self, table, keys, aggregators):
        loaded = self._bridge().run(self._load_static(table, keys))
        return {key: StoredKey(attributes, {}) for key, attributes in loaded.items()}

    def _save_keys(self, table, changes):
        if changes.attributes:
            self._bridge().run(self._save_static(table, changes.attributes))

    def _describe(self):
        return f"V3ioDriver({self._webapi_url})"

    async def _run_all(self, table, make_requests):
        """Runs the coroutines made by `make_requests` (a list of zero-argument functions),
        concurrently up to the table's max_updates_in_flight, or one by one; results in order."""
        if not self._parallel_ops:
            return [await make() for make in make_requests]
        limit = asyncio.Semaphore(max(1, table._max_updates_in_flight))

        async def limited(make):
            async with limit:
                return await make()

        return await asyncio.gather(*(limited(make) for make in make_requests))

    def _is_aggregation_attribute(self, name):
        return name.startswith(self._aggregation_attribute_prefix) or name.startswith(
            self._aggregation_time_attribute_prefix
        )

    async def _load_static(self, table, keys):
        from v3io.dataplane.transport import RaiseForStatus

        container, path = split_v3io_path(table._table_path)
        kv = self._client().kv

        def get(key):
            return lambda: kv.get(container, path, _item_name(key), raise_for_status=RaiseForStatus.never)

        responses = await self._run_all(table, [get(key) for key in keys])
        loaded = {}
        for key, response in zip(keys, responses, strict=True):
            if response.status_code == 404:
                continue
            if response.status_code != 200:
                raise V3ioError(
                    f"Failed to get item {_item_name(key)!r} of table {container}{path}: "
                    f"status {response.status_code}: {_body_text(response)}"
                )
            attributes = {
                name: value
                for name, value in response.output.item.items()
                if not self._is_aggregation_attribute(name)
            }
            loaded[key] = attributes
        return loaded

    async def _save_static(self, table, changes):
        from v3io.dataplane.transport import RaiseForStatus

        container, path = split_v3io_path(table._table_path)
        update = functools.partial(
            self._client().kv.update, container, path, raise_for_status=RaiseForStatus.never
        )
        requests = []
        for key, (to_set, to_remove) in changes.items():
            name = _item_name(key)
            if to_set:
                attributes = {attr: v3io_value(value) for attr, value in to_set.items()}
                requests.append((name, functools.partial(update, name, attributes=attributes)))
            if to_remove:
                expression = _remove_expression(to_remove)
                requests.append((name, functools.partial(update, name, expression=expression)))
        responses = await self._run_all(table, [make for _, make in requests])
        for (name, _), response in zip(requests, responses, strict=True):
            if response.status_code not in (200, 204):
                raise V3ioError(
                    f"Failed to save item {name!r} of table {container}{path}: "
                    f"status {response.status_code}: {_body_text(response)}"
                )

    # ---- streams (StreamTarget)
    async def _create_stream(self, container, path, shard_count, retention_period_hours):
        """Creates the stream at `path` in `container`; a stream already there is kept as it is."""
        from v3io.dataplane.transport import RaiseForStatus

        response = await self._client().stream.create(
            container,
            path,
            shard_count,
            retention_period_hours=retention_period_hours,
            raise_for_status=RaiseForStatus.never,
        )
        if response.status_code not in (200, 204, 409):  # 409: the stream exists
            raise V3ioError(
                f"Failed to create stream {container}{path}: "
                f"status {response.status_code}: {_body_text(response)}"
            )

    async def _put_records(self, container, path, records):
        """Adds `records` (dicts with 'data' and 'shard_id') to the stream, in one request."""
        from v3io.dataplane.transport import RaiseForStatus

        response = await self._client().stream.put_records(
            container, path, records, raise_for_status=RaiseForStatus.never
        )
        if response.status_code != 200 or response.output.failed_record_count:
            raise V3ioError(
                f"Failed to put {len(records)} records to stream {container}{path}: "
                f"status {response.status_code}: {_body_text(response)}"
            )

    async def _get_item(self, container, table_path, key, attributes):
        """The v3io response to reading one item's attributes (what `JoinWithV3IOTable` joins)."""
        from v3io.dataplane.transport import RaiseForStatus

        return await self._client().kv.get(
            container, table_path, str(key), attribute_names=attributes, raise_for_status=RaiseForStatus.never
        )

    async def close(self):
        """Closes database connection to V3IO"""
        await self._end_flow()

    async def _end_flow(self):
        # a client's connections belong to its event loop (the flow's, for streams; the driver's
        # own, for tables): a later flow opens its own
        clients, self._clients = self._clients, {}
        bridge = self._async_bridge
        running = asyncio.get_running_loop()
        for loop, client in clients.items():
            if loop is running:
                await client.close()
            elif bridge is not None and loop is bridge.loop:
                bridge.run(client.close())
        await super()._end_flow()


def _body_text(response):
    body = getattr(response, "body", None)
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return str(body)
