"""What the V3IO emulator stores, and the operations of the web API on it (no HTTP here).

Each container is a tree of paths. A file holds data (an object) and attributes (a key-value item:
a table is the directory of its items); a stream is a directory of shards, each a list of
records. Every change gives the file a new modification time (`__mtime_secs`, `__mtime_nsecs`),
later than any before it.
"""

import base64
import struct
import threading
import time
import zlib

from .platform_errors import PlatformError
from .typed_values import Timestamp, TypedValueError, decode_attributes, encode_attributes, readable
from .update_expressions import (
    ExpressionError,
    apply_update,
    evaluate_condition,
    parse_condition,
    parse_update,
)

__all__ = ["Namespace"]

# the most records one PutRecords request takes, and one GetRecords answer gives by default
_MAX_PUT = 1000
_LOCATION = struct.Struct("<4sQQ")
_LOCATION_MAGIC = b"V3EL"


class _File:
    __slots__ = ("attributes", "data", "mtime")

    def __init__(self):
        self.attributes = {}
        self.data = b""
        self.mtime = None


class _Record:
    __slots__ = ("arrival_ns", "client_info", "data", "partition_key", "sequence")

    def __init__(self, sequence, arrival_ns, data, client_info, partition_key):
        self.sequence = sequence
        self.arrival_ns = arrival_ns
        self.data = data
        self.client_info = client_info
        self.partition_key = partition_key


class _Stream:
    def __init__(self, stream_id, shard_count, retention_hours):
        self.id = stream_id
        self.shard_count = shard_count
        self.retention_hours = retention_hours
        self.shards = [[] for _ in range(shard_count)]
        self.next_sequence = [1] * shard_count
        self.round_robin = 0


def _split(path):
    """(container, path in it without leading or trailing slashes) of a request path."""
    parts = [part for part in path.split("/") if part]
    if not parts:
        raise PlatformError.invalid("the request names no container")
    return parts[0], "/".join(parts[1:])


def _parent(path):
    return path.rpartition("/")[0]


def _checked(mapping, name, kinds, required=True, what="request"):
    if name not in mapping:
        if required:
            raise PlatformError.invalid(f"{what} has no {name}")
        return None
    value = mapping[name]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
        raise PlatformError.invalid(f"{what}: {name} must be {_kind_names(kinds)}, got {value!r}")
    return value


def _as_tuple(kinds):
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _kind_names(kinds):
    return " or ".join(kind.__name__ for kind in _as_tuple(kinds))


class Namespace:
    """The containers of the emulator and the web API's operations on them (thread-safe)."""

    def __init__(self, clock=time.time_ns):
        self._clock = clock
        self._containers = {}
        # container -> every directory path in it (the parents of its files and streams)
        self._directories = {}
        self._streams = {}
        self._lock = threading.RLock()
        self._last_mtime = 0
        self._stream_ids = 0

    # ---- time
    def _now_mtime(self):
        now = max(self._clock(), self._last_mtime + 1)
        self._last_mtime = now
        return Timestamp(now // 10**9, now % 10**9)

    # ---- paths
    def _files(self, container):
        return self._containers.setdefault(container, {})

    def _stream_at(self, container, path):
        """The stream at `path` (or the one whose shard `path` names: (stream, shard or None))."""
        stream = self._streams.get((container, path))
        if stream is not None:
            return stream, None
        parent, _, last = path.rpartition("/")
        stream = self._streams.get((container, parent))
        if stream is not None:
            if not last.isdigit():
                raise PlatformError.stream_invalid(f"{last!r} is not a shard id")
            return stream, int(last)
        return None, None

    def _inside_stream(self, container, path):
        while path:
            if (container, path) in self._streams:
                return True
            path = _parent(path)
        return False

    def _is_directory(self, container, path):
        return path in self._directories.get(container, ())

    def _add_parents(self, container, path, itself=False):
        directories = self._directories.setdefault(container, set())
        if itself:
            directories.add(path)
        path = _parent(path)
        while path and path not in directories:
            directories.add(path)
            path = _parent(path)

    def _file(self, container, path, create=False):
        files = self._files(container)
        found = files.get(path)
        if found is not None:
            return found
        if not path:
            raise PlatformError.is_a_directory(f"/{container}/")
        if self._inside_stream(container, path) or (container, path) in self._streams:
            raise PlatformError.invalid(f"/{container}/{path} is part of a stream")
        if self._is_directory(container, path):
            raise PlatformError.is_a_directory(f"/{container}/{path}")
        if not create:
            raise PlatformError.not_found(f"/{container}/{path}")
        parent = _parent(path)
        while parent and not self._is_directory(container, parent):
            if parent in files:
                raise PlatformError.not_a_directory(f"/{container}/{parent}")
            parent = _parent(parent)
        self._add_parents(container, path)
        found = files[path] = _File()
        return found

    @staticmethod
    def _system(path, file):
        system = {"__name": path.rpartition("/")[2]}
        if file is not None and file.mtime is not None:
            system["__mtime_secs"] = file.mtime.secs
            system["__mtime_nsecs"] = file.mtime.nsecs
            system["__size"] = len(file.data)
        return system

    @staticmethod
    def verifier(file):
        """The X-v3io-transaction-verifier of a file: a condition true until it changes."""
        return f"__mtime_secs=={file.mtime.secs} and __mtime_nsecs=={file.mtime.nsecs}"

    # ---- objects
    def get_object(self, path, offset=0, length=None):
        container, inner = _split(path)
        with self._lock:
            file = self._file(container, inner)
            data = file.data
        end = len(data) if length is None else offset + length
        if offset > len(data):
            raise PlatformError.invalid(f"range starts at {offset}, past the {len(data)} bytes of the object")
        return data[offset:end], file

    def put_object(self, path, data, append=False):
        container, inner = _split(path)
        with self._lock:
            file = self._file(container, inner, create=True)
            file.data = file.data + data if append else bytes(data)
            file.mtime = self._now_mtime()
            return file

    def delete_object(self, path):
        container, inner = _split(path)
        with self._lock:
            files = self._files(container)
            if inner in files:
                del files[inner]
                return
            stream = self._streams.pop((container, inner), None)
            if stream is not None:
                self._directories[container].discard(inner)
                return
            if self._is_directory(container, inner):
                prefix = inner + "/"
                if any(name.startswith(prefix) for name in files) or any(
                    c == container and p.startswith(prefix) for c, p in self._streams
                ):
                    raise PlatformError(409, -39, f"Directory not empty: /{container}/{inner}")
                self._directories[container].discard(inner)
                return
            raise PlatformError.not_found(f"/{container}/{inner}")

    # ---- key-value items
    def put_item(self, path, body):
        container, inner = _split(path)
        item = _checked(body, "Item", dict, what="PutItem")
        try:
            attributes = decode_attributes(item)
        except TypedValueError as ex:
            raise PlatformError.invalid(str(ex)) from None
        mode = _checked(body, "UpdateMode", str, required=False, what="PutItem")
        if mode not in (None, "CreateOrReplaceAttributes", "OverWriteAttributes", "ReplaceAttributes"):
            raise PlatformError.invalid(f"PutItem: unknown UpdateMode {mode!r}")
        condition = self._condition(body)
        _check_names(attributes)
        with self._lock:
            file = self._files(container).get(inner)
            current = {} if file is None else file.attributes
            if not evaluate_condition(condition, current, self._system(inner, file)):
                raise PlatformError.false_condition()
            if mode == "ReplaceAttributes" and file is None:
                raise PlatformError.not_found(f"/{container}/{inner}")
            file = self._file(container, inner, create=True)
            if mode in ("CreateOrReplaceAttributes", "ReplaceAttributes"):
                file.attributes = {**file.attributes, **attributes}
            else:
                file.attributes = attributes
            file.mtime = self._now_mtime()
            return file

    def update_item(self, path, body):
        container, inner = _split(path)
        expression = _checked(body, "UpdateExpression", str, what="UpdateItem")
        alternate = _checked(body, "AlternateUpdateExpression", str, required=False, what="UpdateItem")
        mode = _checked(body, "UpdateMode", str, required=False, what="UpdateItem")
        if mode not in (None, "CreateOrReplaceAttributes", "ReplaceAttributes"):
            raise PlatformError.invalid(f"UpdateItem: unknown UpdateMode {mode!r}")
        try:
            actions = parse_update(expression)
            alternate_actions = None if alternate is None else parse_update(alternate)
        except ExpressionError as ex:
            raise PlatformError.invalid(str(ex)) from None
        condition = self._condition(body)
        with self._lock:
            file = self._files(container).get(inner)
            if file is None and mode == "ReplaceAttributes":
                raise PlatformError.not_found(f"/{container}/{inner}")
            current = {} if file is None else file.attributes
            system = self._system(inner, file)
            try:
                if not evaluate_condition(condition, current, system):
                    if alternate_actions is None:
                        raise PlatformError.false_condition()
                    actions = alternate_actions
                updated = apply_update(actions, current, system)
            except ExpressionError as ex:
                raise PlatformError.invalid(str(ex)) from None
            _check_names(updated)
            file = self._file(container, inner, create=True)
            file.attributes = updated
            file.mtime = self._now_mtime()
            return file

    @staticmethod
    def _condition(body):
        text = _checked(body, "ConditionExpression", str, required=False, what="request")
        try:
            return parse_condition(text)
        except ExpressionError as ex:
            raise PlatformError.invalid(str(ex)) from None

    def get_item(self, path, body):
        container, inner = _split(path)
        names = _attribute_names(_checked(body or {}, "AttributesToGet", str, required=False) or "*")
        with self._lock:
            file = self._file(container, inner)
            return _select(file.attributes, self._system(inner, file), names), file

    def get_items(self, path, body):
        container, inner = _split(path)
        body = body or {}
        table = _checked(body, "TableName", str, required=False, what="GetItems")
        if table:
            inner = f"{inner}/{table.strip('/')}".strip("/")
        names = _attribute_names(_checked(body, "AttributesToGet", str, required=False) or "*")
        try:
            condition = parse_condition(_checked(body, "FilterExpression", str, required=False))
        except ExpressionError as ex:
            raise PlatformError.invalid(str(ex)) from None
        limit = _checked(body, "Limit", int, required=False, what="GetItems")
        if limit is not None and limit < 1:
            raise PlatformError.invalid(f"GetItems: Limit must be positive, got {limit}")
        marker = _checked(body, "Marker", str, required=False, what="GetItems")
        segment = _checked(body, "Segment", int, required=False, what="GetItems")
        total = _checked(body, "TotalSegment", int, required=False, what="GetItems")
        if (segment is None) != (total is None) or (total is not None and not 0 <= segment < total):
            raise PlatformError.invalid(f"GetItems: Segment {segment} of TotalSegment {total}")
        with self._lock:
            if inner and not self._is_directory(container, inner):
                if inner in self._files(container):
                    raise PlatformError.not_a_directory(f"/{container}/{inner}")
                raise PlatformError.not_found(f"/{container}/{inner}")
            files = self._files(container)
            prefix = inner + "/" if inner else ""
            names_in = sorted(
                name
                for name in files
                if name.startswith(prefix)
                and "/" not in name[len(prefix) :]
                and not name[len(prefix) :].startswith(".")
            )
            if marker:
                names_in = [name for name in names_in if name[len(prefix) :] > marker]
            if total is not None:
                names_in = [name for name in names_in if zlib.crc32(name.encode()) % total == segment]
            items = []
            last = True
            for name in names_in:
                file = files[name]
                system = self._system(name, file)
                try:
                    if not evaluate_condition(condition, file.attributes, system):
                        continue
                except ExpressionError as ex:
                    raise PlatformError.invalid(str(ex)) from None
                if limit is not None and len(items) == limit:
                    last = False
                    break
                items.append((name[len(prefix) :], _select(file.attributes, system, names)))
        answer = {"LastItemIncluded": "TRUE" if last else "FALSE", "NumItems": len(items)}
        answer["Items"] = [encode_attributes(attributes) for _, attributes in items]
        if not last:
            answer["NextMarker"] = items[-1][0]
        return answer

    # ---- streams
    def create_stream(self, path, body):
        container, inner = _split(path)
        shards = _checked(body or {}, "ShardCount", int, what="CreateStream")
        hours = _checked(body or {}, "RetentionPeriodHours", int, required=False, what="CreateStream")
        if not inner:
            raise PlatformError.stream_invalid("no stream path")
        if shards < 1:
            raise PlatformError.stream_invalid(f"ShardCount must be positive, got {shards}")
        if hours is not None and hours < 1:
            raise PlatformError.stream_invalid(f"RetentionPeriodHours must be positive, got {hours}")
        with self._lock:
            if (container, inner) in self._streams or self._is_directory(container, inner):
                raise PlatformError.stream_exists(f"/{container}/{inner}")
            if inner in self._files(container):
                raise PlatformError.stream_exists(f"/{container}/{inner}")
            self._stream_ids += 1
            self._add_parents(container, inner, itself=True)
            self._streams[(container, inner)] = _Stream(self._stream_ids, shards, hours or 24)

    def _stream(self, path, shard_required):
        container, inner = _split(path)
        stream, shard = self._stream_at(container, inner)
        if stream is None:
            raise PlatformError.stream_not_found(f"/{container}/{inner}")
        if shard_required and shard is None:
            raise PlatformError.stream_invalid("the request names no shard")
        if shard is not None and not 0 <= shard < stream.shard_count:
            raise PlatformError.shard_out_of_range(shard)
        return stream, shard

    def describe_stream(self, path):
        with self._lock:
            stream, shard = self._stream(path, False)
            if shard is not None:
                raise PlatformError.stream_invalid("DescribeStream names a stream, not a shard")
            return {"ShardCount": stream.shard_count, "RetentionPeriodHours": stream.retention_hours}

    def update_stream(self, path, body):
        shards = _checked(body or {}, "ShardCount", int, what="UpdateStream")
        with self._lock:
            stream, _ = self._stream(path, False)
            if shards < stream.shard_count:
                raise PlatformError.stream_invalid(
                    f"ShardCount can only grow: {stream.shard_count} -> {shards}"
                )
            for _ in range(shards - stream.shard_count):
                stream.shards.append([])
                stream.next_sequence.append(1)
            stream.shard_count = shards

    def put_records(self, path, body, reject=None):
        """Adds the records; `reject(shard, i)` (a fault) says whether record i of a shard, in
        this request, is refused as throttled (with those after it in its shard)."""
        records = _checked(body or {}, "Records", list, what="PutRecords")
        if not records:
            raise PlatformError.stream_invalid("Records is empty")
        if len(records) > _MAX_PUT:
            raise PlatformError.stream_invalid(f"{len(records)} records, more than {_MAX_PUT}")
        decoded = []
        for i, record in enumerate(records):
            what = f"Records[{i}]"
            if not isinstance(record, dict):
                raise PlatformError.stream_invalid(f"{what} is not an object")
            data = _blob(record, "Data", what, required=True)
            info = _blob(record, "ClientInfo", what, required=False)
            if info is not None and len(info) > 16:
                raise PlatformError.stream_invalid(f"{what}.ClientInfo is longer than 128 bits")
            shard = record.get("ShardId")
            if shard is not None and (isinstance(shard, bool) or not isinstance(shard, int)):
                raise PlatformError.stream_invalid(f"{what}.ShardId must be a number, got {shard!r}")
            key = record.get("PartitionKey")
            if key is not None and not isinstance(key, str):
                raise PlatformError.stream_invalid(f"{what}.PartitionKey must be text, got {key!r}")
            decoded.append((data, info, shard, key))
        with self._lock:
            stream, shard_in_path = self._stream(path, False)
            if shard_in_path is not None:
                raise PlatformError.stream_invalid("PutRecords names a stream, not a shard")
            results = []
            failed = 0
            refused = set()
            position = {}
            now = self._clock()
            for data, info, shard, key in decoded:
                if shard is None:
                    if key is not None:
                        shard = zlib.crc32(key.encode()) % stream.shard_count
                    else:
                        shard = stream.round_robin % stream.shard_count
                        stream.round_robin += 1
                if not 0 <= shard < stream.shard_count:
                    failed += 1
                    error = PlatformError.shard_out_of_range(shard)
                    results.append({"ErrorCode": error.code, "ErrorMessage": error.message})
                    continue
                n = position.get(shard, 0)
                position[shard] = n + 1
                if shard in refused or (reject is not None and reject(shard, n)):
                    refused.add(shard)
                    failed += 1
                    error = PlatformError.busy()
                    results.append({"ErrorCode": error.code, "ErrorMessage": error.message})
                    continue
                sequence = stream.next_sequence[shard]
                stream.next_sequence[shard] = sequence + 1
                stream.shards[shard].append(_Record(sequence, now, data, info, key))
                results.append({"SequenceNumber": sequence, "ShardId": shard})
        return {"FailedRecordCount": failed, "Records": results}

    def _trimmed(self, stream, shard):
        records = stream.shards[shard]
        oldest = self._clock() - stream.retention_hours * 3600 * 10**9
        keep = 0
        while keep < len(records) and records[keep].arrival_ns < oldest:
            keep += 1
        if keep:
            del records[:keep]
        return records

    def seek(self, path, body):
        kind = _checked(body or {}, "Type", str, what="SeekShard")
        with self._lock:
            stream, shard = self._stream(path, True)
            records = self._trimmed(stream, shard)
            end = stream.next_sequence[shard]
            if kind == "EARLIEST":
                sequence = records[0].sequence if records else end
            elif kind == "LATEST":
                sequence = end
            elif kind == "SEQUENCE":
                wanted = _checked(body, "StartingSequenceNumber", int, what="SeekShard")
                if not any(record.sequence == wanted for record in records):
                    raise PlatformError.stream_invalid(
                        f"no record with sequence number {wanted} in shard {shard}"
                    )
                sequence = wanted
            elif kind == "TIME":
                secs = _checked(body, "TimestampSec", int, what="SeekShard")
                nsecs = _checked(body, "TimestampNSec", int, required=False, what="SeekShard") or 0
                since = secs * 10**9 + nsecs
                sequence = next((record.sequence for record in records if record.arrival_ns >= since), end)
            else:
                raise PlatformError.stream_invalid(f"unknown seek Type {kind!r}")
        return {"Location": _location(stream, shard, sequence)}

    def get_records(self, path, body):
        location = _checked(body or {}, "Location", str, what="GetRecords")
        limit = _checked(body, "Limit", int, required=False, what="GetRecords")
        if limit is not None and limit < 1:
            raise PlatformError.stream_invalid(f"Limit must be positive, got {limit}")
        with self._lock:
            stream, shard = self._stream(path, True)
            sequence = _read_location(location, stream, shard)
            records = self._trimmed(stream, shard)
            end = stream.next_sequence[shard]
            if sequence > end:
                raise PlatformError.illegal_location(f"sequence {sequence} is past the end of shard {shard}")
            chosen = [record for record in records if record.sequence >= sequence][: limit or _MAX_PUT]
            following = (
                chosen[-1].sequence + 1 if chosen else max(sequence, records[0].sequence if records else end)
            )
            behind = sum(1 for record in records if record.sequence >= following)
        out = []
        for record in chosen:
            entry = {
                "ArrivalTimeSec": record.arrival_ns // 10**9,
                "ArrivalTimeNSec": record.arrival_ns % 10**9,
                "SequenceNumber": record.sequence,
                "Data": base64.b64encode(record.data).decode(),
            }
            if record.client_info is not None:
                entry["ClientInfo"] = base64.b64encode(record.client_info).decode()
            if record.partition_key is not None:
                entry["PartitionKey"] = record.partition_key
            out.append(entry)
        return {
            "NextLocation": _location(stream, shard, following),
            "MSecBehindLatest": 0,
            "RecordsBehindLatest": behind,
            "Records": out,
        }

    # ---- for tests and tools
    def items(self, path):
        """{item name: attributes} of the table at `path` ('container/table')."""
        container, inner = _split(path)
        prefix = inner + "/" if inner else ""
        with self._lock:
            return {
                name[len(prefix) :]: readable(file.attributes)
                for name, file in sorted(self._files(container).items())
                if name.startswith(prefix)
                and "/" not in name[len(prefix) :]
                and not name[len(prefix) :].startswith(".")
            }

    def records(self, path):
        """[[record data, ...] per shard] of the stream at `path`."""
        container, inner = _split(path)
        with self._lock:
            stream = self._streams.get((container, inner))
            if stream is None:
                raise KeyError(f"no stream at {path!r}")
            return [[record.data for record in shard] for shard in stream.shards]

    def clear(self):
        with self._lock:
            self._containers.clear()
            self._directories.clear()
            self._streams.clear()


def _check_names(attributes):
    for name in attributes:
        if not name or name.startswith("__") or not (name[0].isalpha() or name[0] == "_"):
            raise PlatformError.invalid(f"{name!r} is not a valid attribute name")


def _attribute_names(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise PlatformError.invalid("AttributesToGet names no attribute")
    return names


def _select(attributes, system, names):
    if names == ["*"]:
        return dict(attributes)
    if names == ["**"]:
        return {**attributes, **system}
    out = {}
    for name in names:
        if name == "*":
            out.update(attributes)
        elif name in attributes:
            out[name] = attributes[name]
        elif name in system:
            out[name] = system[name]
    return out


def _blob(record, name, what, required):
    value = record.get(name)
    if value is None:
        if required:
            raise PlatformError.stream_invalid(f"{what} has no {name}")
        return None
    if not isinstance(value, str):
        raise PlatformError.stream_invalid(f"{what}.{name} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise PlatformError.stream_invalid(f"{what}.{name} is not base64") from None


def _location(stream, shard, sequence):
    return base64.b64encode(_LOCATION.pack(_LOCATION_MAGIC, (stream.id << 20) | shard, sequence)).decode()


def _read_location(text, stream, shard):
    try:
        magic, where, sequence = _LOCATION.unpack(base64.b64decode(text, validate=True))
    except (ValueError, struct.error):
        raise PlatformError.illegal_location(f"{text!r} is not a location") from None
    if magic != _LOCATION_MAGIC or where != (stream.id << 20) | shard:
        raise PlatformError.illegal_location(f"{text!r} is not a location in shard {shard} of this stream")
    return sequence
