"""Writing records to a V3IO stream once each, whatever the platform does.

Each record carries a tag in its ClientInfo (the writer's random id and a counter: 16 bytes, the
most ClientInfo holds), and the writer knows, per shard, a place before which none of its
unwritten records can be (the shard's end when it first writes there, then its own latest record).
A request the platform refuses as throttled or failing is sent again; records it refuses one by
one (FailedRecordCount) are sent again, alone; when a request gets no answer (a dropped
connection, a timeout), the shards are read from those places and the records found there by
their tags are not sent again. Past the budget, a `V3ioError` says how many records were not
written.
"""

import asyncio
import functools
import os
import struct

from ..dtypes.event import V3ioError
from .v3io_requests import TRANSIENT_STATUSES, Unanswered, answered, check, never_raise, outcome, with_retries

__all__ = ["StreamWriter"]

_TAG = struct.Struct(">8sQ")
# records read per GetRecords while looking for tags
_SCAN_LIMIT = 1000


class StreamWriter:
    """Puts records to V3IO streams through a driver's client (one writer per driver)."""

    def __init__(self, driver):
        self._driver = driver
        self._writer_id = os.urandom(8)
        self._counter = 0
        # (container, stream path, shard) -> ("location", text) or ("sequence", n): where to look
        # for this writer's records that may have been written
        self._cursors = {}

    def forget(self):
        """Forgets the places in the shards (a new flow run starts from their ends)."""
        self._cursors = {}

    def _tag(self):
        self._counter += 1
        return _TAG.pack(self._writer_id, self._counter)

    async def put(self, container, path, records):
        """Writes `records` (dicts with 'data' and 'shard_id') to the stream, each once, in order
        within each shard."""
        driver = self._driver
        stream = f"{container}{path}"
        pending = [dict(record, client_info=self._tag()) for record in records]
        for shard in {record["shard_id"] for record in pending}:
            await self._cursor(container, path, shard)
        delay = driver._backoff_secs
        attempts = driver._retries + 1
        reason = None
        for attempt in range(attempts):
            try:
                client = driver._client()
                put = functools.partial(
                    client.stream.put_records, container, path, pending, raise_for_status=never_raise()
                )
                response = await answered(put, driver._request_timeout_secs)
            except Unanswered as ex:
                reason = str(ex)
                pending = await self._unwritten(container, path, pending)
            else:
                if response.status_code in TRANSIENT_STATUSES:
                    reason = outcome(response)
                else:
                    check(response, f"Failed to put {len(pending)} records to stream {stream}", (200,))
                    pending, reason = self._settle(container, path, pending, response.output.records, stream)
            if not pending:
                return
            if attempt + 1 < attempts:
                await asyncio.sleep(delay)
                delay *= 2
        error = V3ioError(
            f"Failed to put {len(records)} records to stream {stream}: {len(pending)} of them were not "
            f"written after {attempts} attempts ({reason})"
        )
        error.unwritten = len(pending)
        raise error

    def _settle(self, container, path, pending, results, stream):
        """The records a PutRecords answer says were not written (and why): those it refused as
        throttled are sent again; any other refusal fails the put."""
        if len(results) != len(pending):
            raise V3ioError(
                f"Failed to put {len(pending)} records to stream {stream}: the answer holds "
                f"{len(results)} results"
            )
        left = []
        reason = None
        for record, result in zip(pending, results, strict=True):
            if result.error_code is None:
                self._cursors[(container, path, record["shard_id"])] = ("sequence", result.sequence_number)
                continue
            if not _throttled(result):
                raise V3ioError(
                    f"Failed to put a record to shard {record['shard_id']} of stream {stream}: "
                    f"{result.error_code} {result.error_message}"
                )
            left.append(record)
            reason = f"refused: {result.error_code} {result.error_message}"
        return left, reason

    async def _cursor(self, container, path, shard):
        """Where this writer's next records to `shard` will be (its end, the first time)."""
        key = (container, path, shard)
        if key not in self._cursors:
            driver = self._driver
            response = await with_retries(
                driver,
                lambda: driver._client().stream.seek(
                    container, path, shard, "LATEST", raise_for_status=never_raise()
                ),
                f"Failed to seek shard {shard} of stream {container}{path}",
            )
            check(response, f"Failed to seek shard {shard} of stream {container}{path}", (200,))
            self._cursors[key] = ("location", response.output.location)
        return self._cursors[key]

    async def _unwritten(self, container, path, pending):
        """Those of `pending` that are not in the stream (found by their tags), in order."""
        written = set()
        for shard in {record["shard_id"] for record in pending}:
            written |= await self._tags_in(container, path, shard)
        return [record for record in pending if record["client_info"] not in written]

    async def _tags_in(self, container, path, shard):
        """The tags of this writer's records in `shard` from its cursor on (which it moves to the
        latest of them)."""
        driver = self._driver
        where = f"shard {shard} of stream {container}{path}"
        kind, value = self._cursors[(container, path, shard)]
        client = driver._client
        if kind == "sequence":
            response = await with_retries(
                driver,
                lambda: client().stream.seek(
                    container,
                    path,
                    shard,
                    "SEQUENCE",
                    starting_sequence_number=value,
                    raise_for_status=never_raise(),
                ),
                f"Failed to seek {where}",
            )
            check(response, f"Failed to seek {where}", (200,))
            location = response.output.location
        else:
            location = value
        tags = set()
        while True:
            read = functools.partial(
                client().stream.get_records,
                container,
                path,
                shard,
                location,
                limit=_SCAN_LIMIT,
                raise_for_status=never_raise(),
            )
            response = await with_retries(
                driver,
                read,
                f"Failed to read {where}",
            )
            check(response, f"Failed to read {where}", (200,))
            output = response.output
            for record in output.records:
                info = record.client_info
                if info is not None and len(info) == _TAG.size and info[:8] == self._writer_id:
                    tags.add(info)
                    self._cursors[(container, path, shard)] = ("sequence", record.sequence_number)
            if not output.records or not output.records_behind_latest:
                return tags
            location = output.next_location


def _throttled(result):
    message = f"{result.error_code} {result.error_message}".lower()
    return any(word in message for word in ("throttl", "busy", "temporarily", "-11", "internal"))
