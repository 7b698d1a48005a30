"""RedisDriver: tables in Redis, the online store: one hash per key, loaded and flushed in
pipelined batches (one round trip per batch of keys, never one per event).

Layout (`key_prefix` defaults to 'storey:'):

- `{key_prefix}{table path}:{{key}}`: a hash per key (list keys are their parts joined by '.').
  The key is the hash tag: a Redis cluster keeps every table's hash of an entity on one slot;
- `{key_prefix}{table path}:__schema`: aggregator name -> description (JSON) of the aggregators
  whose state the table holds, so that it is never given to a different aggregator.

A key's hash holds its static attributes, a field each, by name (values as
`storey.drivers.redis_values` encodes them); the key's state of each aggregator, as two bytes
fields `__aggr:NAME:floats` and `__aggr:NAME:ints`; and `__version` (how many flushes wrote it)
and `__writer` (which table object wrote it last).

Several processes, one table: each flush checks, per key, that the hash is still at the version
this table object loaded (or last wrote); a key another writer changed meanwhile fails the flush
with a `WriteConflictError` naming the keys, instead of overwriting the other writer's updates
(window state cannot be merged: it is read, changed and written whole). Processes that each own
a disjoint set of keys (and any number of readers) never conflict.

A flush is one pipeline of `SAVE_KEYS` script calls (`storey.drivers.redis_scripts`), each a chunk
of keys saved whole or not at all; a failed flush's changes stay in the table and are written
again by its next flush (state is written whole, so writing it again is exact).
"""

import json
import os
import threading
import uuid
import weakref

try:
    import redis
    import redis.asyncio
    from redis.backoff import NoBackoff
    from redis.exceptions import NoScriptError, ReadOnlyError, RedisError, TryAgainError
    from redis.retry import Retry
except ImportError as ex:  # pragma: no cover - depends on the environment
    raise ImportError(f"RedisDriver needs the redis package: pip install 'storey[redis]' ({ex})") from ex

from .driver import Driver, StoredKey
from .redis_scripts import SAVE_KEYS, SAVE_SCHEMA
from .redis_values import decode_value, encode_value

__all__ = ["RedisDriver", "WriteConflictError"]

DEFAULT_KEY_PREFIX = "storey:"
DEFAULT_URL = "redis://localhost:6379"
# keys per SAVE_KEYS call (the server runs each call alone: short calls keep it answering others)
_CHUNK = 256
# keys per pipeline when loading without parallel operations
_LOAD_CHUNK = 1000
VERSION = b"__version"
WRITER = b"__writer"
_AGGREGATION = b"__aggr:"
_RESERVED = ("__version", "__writer", "__aggr:")
# how many conflicting keys an error names
_KEYS_NAMED = 5


class WriteConflictError(RedisError):
    """A flush found keys that another writer changed since this table loaded them."""


class RedisDriver(Driver):
    """Database connection to Redis: each table key is a Redis hash holding the key's static
    attributes and window-aggregation state, loaded the first time a step needs the key and
    flushed in pipelined batches.

    Processes may share a table when each writes its own keys (readers are free): a key written by
    two writers fails the second one's flush with `WriteConflictError`, nothing overwritten.

    :param redis_client: a client of the `redis` package: `redis.Redis`, or
        `redis.asyncio.Redis`, whose calls then run on an event loop of the driver's own (give it a
        client no other event loop uses). It must return bytes (no `decode_responses`). Optional:
        by default the driver connects to `redis_url`.
    :param key_prefix: the start of every Redis key the driver uses. Defaults to 'storey:'.
    :param redis_url: the server's URL ('redis://host:port/db', 'rediss://...' for TLS,
        'unix:///path'), when no `redis_client` is given. Defaults to the REDIS_URL environment
        variable, or redis://localhost:6379.
    :param use_parallel_operations: whether the requests for a batch of keys go out together in
        one pipeline (one round trip) or one chunk of keys after another. Defaults to True.
    """

    def __init__(self, redis_client=None, key_prefix=None, redis_url=None, use_parallel_operations=True):
        if redis_client is not None and redis_url is not None:
            raise ValueError("RedisDriver: give redis_client or redis_url, not both")
        if redis_client is not None and not isinstance(redis_client, _CLIENT_TYPES):
            raise TypeError(
                "RedisDriver: redis_client must be a client of the redis package (redis.Redis, "
                f"redis.asyncio.Redis), got {type(redis_client).__name__}: {redis_client!r}"
            )
        if redis_url is not None and not isinstance(redis_url, str):
            raise TypeError(f"RedisDriver: redis_url must be a string, got {redis_url!r}")
        if key_prefix is None:
            key_prefix = DEFAULT_KEY_PREFIX
        if not isinstance(key_prefix, str) or "{" in key_prefix or "}" in key_prefix:
            raise ValueError(
                f"RedisDriver: key_prefix must be a string without '{{' or '}}' (the key is the hash "
                f"tag), got {key_prefix!r}"
            )
        if redis_client is None:
            redis_url = redis_url or os.environ.get("REDIS_URL") or DEFAULT_URL
            try:
                redis.connection.parse_url(redis_url)
            except ValueError as ex:
                raise ValueError(f"RedisDriver: redis_url {redis_url!r} is not a Redis URL ({ex})") from None
        elif _decodes_responses(redis_client):
            raise ValueError(
                "RedisDriver: redis_client decodes responses (decode_responses=True): give a client "
                "that returns bytes (window state is stored as bytes)"
            )
        self._redis_client = redis_client
        self._is_async = isinstance(redis_client, redis.asyncio.Redis)
        self._redis_url = redis_url
        self._key_prefix = key_prefix
        self._parallel_ops = bool(use_parallel_operations)
        # the client the driver made from redis_url (closed when a flow ends)
        self._own_client = None
        self._lock = threading.Lock()
        # table object -> _Writer: what it loaded and wrote of each key
        self._writers = weakref.WeakKeyDictionary()

    def __repr__(self):
        where = self._redis_url if self._redis_client is None else _client_address(self._redis_client)
        return f"RedisDriver({where!r}, key_prefix={self._key_prefix!r})"

    def _describe(self):
        return repr(self)

    # ---- the contract
    def _load_aggregation_schema(self, table):
        (stored,) = self._run([("HGETALL", self._writer(table).schema_key)])
        return {name.decode(): json.loads(description) for name, description in stored.items()}

    def _load_keys(self, table, keys, aggregators):
        writer = self._writer(table)
        chunk = max(len(keys), 1) if self._parallel_ops else _LOAD_CHUNK
        replies = []
        for start in range(0, len(keys), chunk):
            replies += self._run([("HGETALL", writer.hash_key(key)) for key in keys[start : start + chunk]])
        state_fields = [(name, *_state_fields(name)) for name in aggregators]
        versions = writer.versions
        found = {}
        for key, fields in zip(keys, replies, strict=True):
            versions.setdefault(key, int(fields.get(VERSION, 0)))
            if not fields:
                continue
            aggregations = {}
            for name, floats, ints in state_fields:
                if floats in fields:
                    aggregations[name] = (fields[floats], fields[ints])
            attributes = {
                field.decode(): decode_value(value)
                for field, value in fields.items()
                if not field.startswith(_RESERVED_BYTES)
            }
            found[key] = StoredKey(attributes or None, aggregations)
        return found

    def _save_keys(self, table, changes):
        writer = self._writer(table)
        if changes.schema:
            self._save_schema(table, writer, changes.schema)
        fields = {}
        for key, (attributes, removed) in changes.attributes.items():
            sets, removes = fields.setdefault(key, ([], []))
            for name, value in attributes.items():
                field = _attribute_field(table, key, name)
                if value is None:
                    removes.append(field)
                    continue
                try:
                    sets += (field, encode_value(value))
                except TypeError as ex:
                    raise TypeError(f"RedisDriver: attribute {name!r} of key {key!r}: {ex}") from None
            removes += [_attribute_field(table, key, name) for name in removed]
        for rows in changes.aggregations:
            floats_field, ints_field = _state_fields(rows.name)
            for key, floats, ints in zip(rows.keys, rows.floats, rows.ints, strict=True):
                fields.setdefault(key, ([], []))[0].extend((floats_field, floats, ints_field, ints))
        keys = list(fields)
        chunks = [keys[start : start + _CHUNK] for start in range(0, len(keys), _CHUNK)]
        versions = writer.versions
        calls = []
        for chunk in chunks:
            args = [writer.token]
            for key in chunk:
                sets, removes = fields[key]
                args += (versions.get(key, ""), len(sets) // 2, len(removes), *sets, *removes)
            calls.append(("EVALSHA", SAVE_KEYS.sha, len(chunk), *map(writer.hash_key, chunk), *args))
        conflicts = []
        for chunk, (saved, values) in zip(chunks, self._run_scripts(calls), strict=True):
            if saved:
                versions.update(zip(chunk, values, strict=True))
            else:
                conflicts += [
                    (chunk[i - 1], int(held), versions.get(chunk[i - 1])) for i, held in _pairs(values)
                ]
        if conflicts:
            raise WriteConflictError(_conflict_message(conflicts))

    def _is_transient(self, error):
        return isinstance(error, _TRANSIENT)

    async def _end_flow(self):
        self._close_own_client()
        if not self._is_async:
            # an asyncio client's connections belong to the driver's loop: it stays until close()
            await super()._end_flow()

    async def close(self):
        bridge = self._async_bridge
        if self._is_async and bridge is not None:
            bridge.run(self._redis_client.connection_pool.disconnect())
        self._close_own_client()
        await super()._end_flow()

    # ---- keys and writers
    def _writer(self, table):
        writer = self._writers.get(table)
        if writer is None:
            path = table._table_path
            if "{" in path or "}" in path:
                raise ValueError(
                    f"RedisDriver: table path {path!r} may not hold '{{' or '}}' (the key is the hash tag)"
                )
            with self._lock:
                writer = self._writers.setdefault(table, _Writer(f"{self._key_prefix}{path}"))
        return writer

    def _save_schema(self, table, writer, schema):
        args = []
        for name, description in schema.items():
            args += (name, json.dumps(description, sort_keys=True))
        (differing,) = self._run_scripts([("EVALSHA", SAVE_SCHEMA.sha, 1, writer.schema_key, *args)])
        if differing:
            named = "; ".join(
                f"{name.decode()!r}: stored {held.decode()}" for name, held in _pairs(differing)
            )
            raise WriteConflictError(
                f"another writer stored different descriptions of aggregators of table "
                f"{table._table_path!r} meanwhile ({named})"
            )

    # ---- talking to the server
    def _client(self):
        if self._redis_client is not None:
            return self._redis_client
        with self._lock:
            if self._own_client is None:
                # one immediate retry for a connection the server dropped while idle; any other
                # failure goes back to the table, which retries with backoff (_is_transient)
                self._own_client = redis.Redis.from_url(self._redis_url, retry=Retry(NoBackoff(), 1))
            return self._own_client

    def _close_own_client(self):
        with self._lock:
            client, self._own_client = self._own_client, None
        if client is not None:
            client.close()

    def _run(self, commands):
        """The replies of `commands` ((name, *args) tuples), sent in one pipeline; raises the
        first error."""
        client = self._client()
        if self._is_async:
            with self._lock:
                bridge = self._bridge()
            return bridge.run(_run_async(client, commands))
        with client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return pipe.execute()

    def _run_scripts(self, calls):
        """The replies of EVALSHA `calls` (in one pipeline, or one after another without parallel
        operations), loading the scripts first if the server does not hold them (a new or restarted
        server)."""
        try:
            return self._send_all(calls)
        except NoScriptError:
            self._run([("SCRIPT", "LOAD", script.source) for script in (SAVE_KEYS, SAVE_SCHEMA)])
            # a call that failed for want of its script wrote nothing; those that ran are written
            # again, which their version check takes as this writer's own
            return self._send_all(calls)

    def _send_all(self, commands):
        if self._parallel_ops:
            return self._run(commands)
        return [self._run([command])[0] for command in commands]


class _Writer:
    """What one table object knows of its keys in Redis: the version of each key it loaded or
    wrote last, and the token its writes carry."""

    def __init__(self, base):
        self.token = uuid.uuid4().hex
        self.versions = {}
        self._base = f"{base}:{{".encode()
        self.schema_key = f"{base}:__schema".encode()

    def hash_key(self, key):
        return self._base + str(key).encode() + b"}"


async def _run_async(client, commands):
    async with client.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        return await pipe.execute()


_RESERVED_BYTES = tuple(name.encode() for name in _RESERVED)
_CLIENT_TYPES = (redis.Redis, redis.asyncio.Redis)
_TRANSIENT = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    TryAgainError,
    ReadOnlyError,
    ConnectionError,
    TimeoutError,
)


def _state_fields(name):
    return b"__aggr:" + name.encode() + b":floats", b"__aggr:" + name.encode() + b":ints"


def _attribute_field(table, key, name):
    if name.startswith(_RESERVED):
        raise ValueError(
            f"RedisDriver: attribute {name!r} of key {key!r} of table {table._table_path!r}: names "
            f"starting with {', '.join(map(repr, _RESERVED))} are the driver's own"
        )
    return name.encode()


def _pairs(values):
    return zip(values[::2], values[1::2], strict=True)


def _conflict_message(conflicts):
    named = ", ".join(
        f"{key!r} (stored version {held}, this table's {'none' if known is None else known})"
        for key, held, known in conflicts[:_KEYS_NAMED]
    )
    more = f" and {len(conflicts) - _KEYS_NAMED} more" if len(conflicts) > _KEYS_NAMED else ""
    return (
        f"{len(conflicts)} key{'s' if len(conflicts) > 1 else ''} ({named}{more}) changed by another "
        "writer since this table loaded them: each key of a table must have one writer"
    )


def _decodes_responses(client):
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None) or {}
    return bool(kwargs.get("decode_responses") or getattr(client, "decode_responses", False))


def _client_address(client):
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None) or {}
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
