"""V3ioDriver: tables in V3IO key-value storage, window state included (in storey 1.0.6's item
format, see `storey.drivers.v3io_items`), and the V3IO access its stream target shares."""

import asyncio
import datetime
import inspect
import json
import os

import numpy as np

from ..dtypes.event import V3ioError
from ..table.aggregation_state import REFERENCE_FORM, describe
from .driver import Driver, StoredKey
from .v3io_items import ItemFormat, raw_aggregates, reference_schema_entry
from .v3io_requests import check, never_raise, with_retries
from .v3io_streams import StreamWriter

__all__ = ["NeedsV3ioAccess", "V3ioDriver", "split_v3io_path"]

# the object beside a table's items holding the descriptions of its aggregators (as storey 1.0.6)
SCHEMA_FILE = ".schema"
# loads of at least this many keys first ask whether the table holds any item
_PROBE_KEYS = 32


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
    with '.'), whose attributes are the key's static attributes and its window-aggregation state,
    the latter in storey 1.0.6's format (`aggr_<name>_<aggregate>_a/_b` arrays of period buckets
    and `_<name>_a/_b` times, a `.schema` object beside the items) and in ours (`_<name>_state`):
    a table storey 1.0.6 aggregated into is continued here, and the reverse. A table path is
    'container/path/to/table' (or '/container/...' or 'v3io:///container/...').

    Requests that get no answer, or a throttled or failing one (429, 5xx), are sent again, waiting
    `_backoff_secs` (doubled each time) up to `_retries` times; a flush writes each key's item with
    absolute values, so sending it again changes nothing. Past that budget a flush fails with a
    `V3ioError` saying how many keys were not written, and its keys are written by the next flush
    (the keys that were written stay written: V3IO writes items one by one).

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
    # how long a request may wait for its answer (seconds)
    _request_timeout_secs = 60.0

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
        # table path -> its .schema object as last read or written (None: there is none)
        self._schemas = {}
        self._streams = StreamWriter(self)

    def _create_client(self):
        import v3io.aio.dataplane

        kwargs = dict(self._v3io_client_kwargs)
        # requests are sent again here, where it is known whether that is safe (stream puts)
        if "retry_intervals" in inspect.signature(v3io.aio.dataplane.Client).parameters:
            kwargs.setdefault("retry_intervals", (0,))
        return v3io.aio.dataplane.Client(endpoint=self._webapi_url, access_key=self._access_key, **kwargs)

    def _client(self):
        """The client for the running event loop."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._create_client()
        return client

    def _describe(self):
        return f"V3ioDriver({self._webapi_url})"

    # ---- tables
    def _formats(self, table):
        """name -> ItemFormat of the aggregators on `table`."""
        state = table._aggregation_state
        if state is None:
            return {}
        return {name: ItemFormat(group, index) for name, (group, index) in state.by_name.items()}

    def _load_aggregation_schema(self, table):
        schema = self._bridge().run(self._read_schema(table))
        formats = self._formats(table)
        found = {}
        for name, entry in (schema or {}).items():
            if not isinstance(entry, dict):
                continue
            if isinstance(entry.get("storey"), dict):
                found[name] = entry["storey"]
            elif name in formats:
                found[name] = self._reference_description(table, formats[name], entry)
            else:
                # checked against the aggregator read from it once there is one (_load_keys)
                found[name] = {REFERENCE_FORM: entry}
        return found

    def _reference_description(self, table, item_format, entry):
        """The description of an aggregator storey 1.0.6 aggregated into the table: the table's own
        when its state can be read from the arrays (same kind of windows and period, and every
        raw aggregate it needs kept), else a ValueError naming the difference."""
        layout = item_format.layout
        where = f"Table {table._table_path!r}: aggregator {item_format.name!r}"
        kind = "FixedWindow" if layout.fixed else "SlidingWindow"
        stored_kind = entry.get("window_type", kind)
        if stored_kind != kind:
            raise ValueError(
                f"{where} differs from the one storey 1.0.6 aggregated (windows: stored {stored_kind}, "
                f"given {kind})"
            )
        period = entry.get("period_millis")
        if not isinstance(period, int | float) or round(period * 1e6) != layout.period:
            raise ValueError(
                f"{where} differs from the one storey 1.0.6 aggregated (period: stored {period} ms, "
                f"given {layout.period / 1e6:g} ms)"
            )
        stored = set(entry.get("aggregates") or ())
        needed = set(raw_aggregates(layout.aggregator.aggregations))
        if not needed <= stored:
            raise ValueError(
                f"{where} needs the aggregates {sorted(needed - stored)}, which storey 1.0.6 did not keep "
                f"(it kept {sorted(stored)})"
            )
        return describe(layout)

    def _load_keys(self, table, keys, aggregators):
        items = self._bridge().run(self._get_items(table, keys))
        formats = self._formats(table)
        schema = self._schemas.get(table._table_path) or {}
        for name in aggregators:
            entry = schema.get(name)
            if name in formats and isinstance(entry, dict) and not isinstance(entry.get("storey"), dict):
                self._reference_description(table, formats[name], entry)
        wanted = [formats[name] for name in aggregators if name in formats]
        found = {}
        for key, item in zip(keys, items, strict=True):
            if item is None:
                continue
            attributes = {
                name: value for name, value in item.items() if not self._is_aggregation_attribute(name)
            }
            aggregations = {}
            for item_format in wanted:
                try:
                    state = item_format.stored_state(item)
                except ValueError as ex:
                    raise ValueError(f"item {_item_name(key)!r}: {ex}") from None
                if state is not None:
                    aggregations[item_format.name] = state
            found[key] = StoredKey(attributes or None, aggregations)
        return found

    def _save_keys(self, table, changes):
        formats = self._formats(table)
        container, path = split_v3io_path(table._table_path)
        sets = {}
        for key, (to_set, _) in changes.attributes.items():
            if to_set:
                sets[key] = {name: v3io_value(value) for name, value in to_set.items()}
        for rows in changes.aggregations:
            item_format = formats[rows.name]
            layout = item_format.layout
            where = f"Table {table._table_path!r}: aggregator {rows.name!r}"
            floats, ints = layout.unpack(rows.floats, rows.ints, where)
            for key, attributes in zip(rows.keys, item_format.attributes(floats, ints), strict=True):
                if attributes:
                    sets.setdefault(key, {}).update(attributes)
        removes = {key: names for key, (_, names) in changes.attributes.items() if names}
        self._bridge().run(self._save(table, container, path, changes.schema, formats, sets, removes))

    def _is_aggregation_attribute(self, name):
        return name.startswith(self._aggregation_attribute_prefix) or name.startswith(
            self._aggregation_time_attribute_prefix
        )

    async def _read_schema(self, table):
        container, path = split_v3io_path(table._table_path)
        where = f"{container}{path}/{SCHEMA_FILE}"
        response = await with_retries(
            self,
            lambda: self._client().object.get(
                container, f"{path}/{SCHEMA_FILE}", raise_for_status=never_raise()
            ),
            f"Failed to read {where}",
        )
        if response.status_code == 404:
            schema = None
        else:
            check(response, f"Failed to read {where}", (200,))
            try:
                schema = json.loads(response.body)
            except ValueError:
                raise V3ioError(f"{where} is not JSON: {response.body[:200]!r}") from None
            if not isinstance(schema, dict):
                raise V3ioError(f"{where} is not a JSON object: {response.body[:200]!r}")
        self._schemas[table._table_path] = schema
        return schema

    async def _write_schema(self, table, container, path, descriptions, formats):
        if table._table_path not in self._schemas:
            await self._read_schema(table)
        schema = dict(self._schemas[table._table_path] or {})
        for name, description in descriptions.items():
            entry = reference_schema_entry(formats[name].layout)
            entry["storey"] = description
            schema[name] = entry
        where = f"{container}{path}/{SCHEMA_FILE}"
        body = json.dumps(schema)
        response = await with_retries(
            self,
            lambda: self._client().object.put(
                container, f"{path}/{SCHEMA_FILE}", body=body, raise_for_status=never_raise()
            ),
            f"Failed to write {where}",
        )
        check(response, f"Failed to write {where}")
        self._schemas[table._table_path] = schema

    async def _run_all(self, table, make_requests):
        """Runs the coroutines made by `make_requests` (a list of zero-argument functions),
        concurrently up to the table's max_updates_in_flight, or one by one; results in order,
        exceptions among them."""
        if not self._parallel_ops:
            results = []
            for make in make_requests:
                try:
                    results.append(await make())
                except Exception as ex:
                    results.append(ex)
            return results
        limit = asyncio.Semaphore(max(1, table._max_updates_in_flight))

        async def limited(make):
            async with limit:
                return await make()

        return await asyncio.gather(*(limited(make) for make in make_requests), return_exceptions=True)

    async def _table_is_empty(self, container, path):
        """Whether the table at `path` holds no item (one request: a page of one item)."""
        where = f"Failed to list table {container}{path}"
        response = await with_retries(
            self,
            lambda: self._client().kv.scan(
                container, f"{path}/", attribute_names=["__name"], limit=1, raise_for_status=never_raise()
            ),
            where,
        )
        if response.status_code == 404:
            return True
        check(response, where, (200,))
        return not response.output.items

    async def _get_items(self, table, keys):
        """Each key's item (a dict of attributes), None for keys without one."""
        container, path = split_v3io_path(table._table_path)
        where = f"table {container}{path}"
        # a new table (a first backfill): one request says that none of the keys has an item
        if len(keys) >= _PROBE_KEYS and await self._table_is_empty(container, path):
            return [None] * len(keys)

        def get(key):
            name = _item_name(key)

            async def request():
                response = await with_retries(
                    self,
                    lambda: self._client().kv.get(container, path, name, raise_for_status=never_raise()),
                    f"Failed to get item {name!r} of {where}",
                )
                if response.status_code == 404:
                    return None
                check(response, f"Failed to get item {name!r} of {where}", (200,))
                return response.output.item

            return request

        results = await self._run_all(table, [get(key) for key in keys])
        failed = [
            (key, result)
            for key, result in zip(keys, results, strict=True)
            if isinstance(result, BaseException)
        ]
        if failed:
            raise V3ioError(
                f"{len(failed)} of {len(keys)} items of {where} could not be read: {failed[0][1]}"
            ) from failed[0][1]
        return results

    async def _save(self, table, container, path, descriptions, formats, sets, removes):
        where = f"table {container}{path}"
        if descriptions:
            await self._write_schema(table, container, path, descriptions, formats)
        kv = lambda: self._client().kv  # noqa: E731

        def updating(key, **update):
            name = _item_name(key)
            failure = f"Failed to save item {name!r} of {where}"

            async def request():
                response = await with_retries(
                    self,
                    lambda: kv().update(container, path, name, raise_for_status=never_raise(), **update),
                    failure,
                )
                check(response, failure)

            return request

        keys = list(dict.fromkeys([*sets, *removes]))
        requests = [(key, updating(key, attributes=attributes)) for key, attributes in sets.items()]
        requests += [
            (key, updating(key, expression=_remove_expression(names))) for key, names in removes.items()
        ]
        results = await self._run_all(table, [make for _, make in requests])
        failed = {}
        for (key, _), result in zip(requests, results, strict=True):
            if isinstance(result, BaseException):
                failed.setdefault(key, result)
        if failed:
            first = next(iter(failed.values()))
            raise V3ioError(
                f"{len(failed)} of {len(keys)} keys were not written to {where}: {first}"
            ) from first

    # ---- streams (StreamTarget)
    async def _create_stream(self, container, path, shard_count, retention_period_hours):
        """Creates the stream at `path` in `container`; a stream already there is kept as it is."""
        where = f"Failed to create stream {container}{path}"
        response = await with_retries(
            self,
            lambda: self._client().stream.create(
                container,
                path,
                shard_count,
                retention_period_hours=retention_period_hours,
                raise_for_status=never_raise(),
            ),
            where,
        )
        check(response, where, (200, 204, 409))  # 409: the stream exists

    async def _put_records(self, container, path, records):
        """Adds `records` (dicts with 'data' and 'shard_id') to the stream, each exactly once, in
        order within each shard (see `storey.drivers.v3io_streams`)."""
        await self._streams.put(container, path, records)

    async def _get_item(self, container, table_path, key, attributes):
        """The v3io response to reading one item's attributes (what `JoinWithV3IOTable` joins)."""
        return await with_retries(
            self,
            lambda: self._client().kv.get(
                container, table_path, str(key), attribute_names=attributes, raise_for_status=never_raise()
            ),
            f"Failed to get item {str(key)!r} of table {container}{table_path}",
        )

    async def close(self):
        """Closes database connection to V3IO"""
        await self._end_flow()

    async def _end_flow(self):
        # a client's connections belong to its event loop (the flow's, for streams; the driver's
        # own, for tables): a later flow opens its own
        clients, self._clients = self._clients, {}
        self._schemas = {}
        self._streams.forget()
        bridge = self._async_bridge
        running = asyncio.get_running_loop()
        for loop, client in clients.items():
            if loop is running:
                await client.close()
            elif bridge is not None and loop is bridge.loop:
                bridge.run(client.close())
        await super()._end_flow()
