"""The HTTP face of the V3IO emulator: requests as the web API takes them, answers as it gives
them (aiohttp's low-level server, one handler).

Data-service requests name their operation in the X-v3io-function header and carry a JSON body;
without the header, GET, PUT, DELETE and HEAD are object operations (PUT with `Range: -1`
appends). Every request needs an access key (X-v3io-session-key, or Authorization). Paths under
/_emulator/ drive the emulator itself: faults (GET, POST, DELETE /_emulator/faults), the requests
it received (GET /_emulator/requests), clearing everything (POST /_emulator/reset).
"""

import asyncio
import json
import re

from aiohttp import web

from .faults import Fault
from .namespace import Namespace
from .platform_errors import PlatformError
from .typed_values import encode_attributes

try:
    import orjson

    _dumps = orjson.dumps
    _loads = orjson.loads
except ImportError:  # pragma: no cover - orjson comes with the v3io client
    _dumps = lambda value: json.dumps(value).encode()  # noqa: E731
    _loads = json.loads

__all__ = ["WebApi"]

_DATA_OPERATIONS = {
    "PutItem",
    "UpdateItem",
    "GetItem",
    "GetItems",
    "CreateStream",
    "DescribeStream",
    "UpdateStream",
    "PutRecords",
    "SeekShard",
    "GetRecords",
}
_OBJECT_OPERATIONS = {
    "GET": "GetObject",
    "PUT": "PutObject",
    "POST": "PutObject",
    "DELETE": "DeleteObject",
    "HEAD": "HeadObject",
}
_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class WebApi:
    """Answers web-API requests over a `Namespace`, injecting the faults of `faults`."""

    def __init__(self, namespace, faults, access_key=None, keep_requests=1000):
        self.namespace = namespace
        self.faults = faults
        self.access_key = access_key
        self.requests = []
        self._keep = keep_requests

    async def handle(self, request):
        path = request.path
        if path.startswith("/_emulator/"):
            return await self._control(request, path[len("/_emulator/") :])
        function = request.headers.get("X-v3io-function")
        body = await request.read()
        operation = function or _OBJECT_OPERATIONS.get(request.method, request.method)
        self._remember(request.method, path, operation, body)
        fault = self.faults.pick(operation, path)
        if fault is not None:
            if fault.kind == "drop":
                return _drop(request)
            if fault.kind == "error":
                error = PlatformError.busy() if fault.status in (503, 429) else PlatformError.internal()
                error.status = fault.status
                return _error(error)
        try:
            key = request.headers.get("X-v3io-session-key") or request.headers.get("Authorization")
            if not key or (self.access_key is not None and key != self.access_key):
                raise PlatformError.permission_denied()
            if function is None:
                response = self._object(request, path, body)
            elif function in _DATA_OPERATIONS:
                reject = None
                if fault is not None and fault.kind == "throttle_records":
                    reject = _refusals(fault)
                response = self._data(function, path, body, reject)
            else:
                raise PlatformError.invalid(f"unknown X-v3io-function {function!r}")
        except PlatformError as ex:
            response = _error(ex)
        if fault is not None and fault.kind == "drop_after":
            return _drop(request)
        if fault is not None and fault.kind == "stall":
            await asyncio.sleep(fault.seconds)
        return response

    def _remember(self, method, path, operation, body):
        if self._keep:
            self.requests.append((method, path, operation, body))
            if len(self.requests) > self._keep:
                del self.requests[: len(self.requests) - self._keep]

    # ---- data services
    def _data(self, function, path, raw, reject):
        body = None
        if raw:
            try:
                body = _loads(raw)
            except ValueError:
                raise PlatformError.invalid("the request body is not JSON") from None
            if not isinstance(body, dict):
                raise PlatformError.invalid("the request body must be a JSON object")
        ns = self.namespace
        if function in ("PutItem", "UpdateItem", "CreateStream", "PutRecords") and body is None:
            raise PlatformError.invalid(f"{function} needs a JSON body")
        if function == "PutItem":
            return _ok_item(ns.put_item(path, body))
        if function == "UpdateItem":
            return _ok_item(ns.update_item(path, body))
        if function == "GetItem":
            attributes, file = ns.get_item(path, body)
            response = _json({"Item": encode_attributes(attributes)})
            response.headers["X-v3io-transaction-verifier"] = Namespace.verifier(file)
            return response
        if function == "GetItems":
            return _json(ns.get_items(path, body))
        if function == "CreateStream":
            ns.create_stream(path, body)
            return web.Response(status=204)
        if function == "DescribeStream":
            return _json(ns.describe_stream(path))
        if function == "UpdateStream":
            ns.update_stream(path, body)
            return web.Response(status=204)
        if function == "PutRecords":
            return _json(ns.put_records(path, body, reject))
        if function == "SeekShard":
            return _json(ns.seek(path, body))
        return _json(ns.get_records(path, body))

    # ---- objects
    def _object(self, request, path, body):
        ns = self.namespace
        method = request.method
        if path.rstrip("/").count("/") < 2:
            raise PlatformError.unsupported(f"{method} {path} (container listings)")
        if method in ("GET", "HEAD"):
            offset, length = 0, None
            given = request.headers.get("Range")
            if given:
                match = _RANGE.match(given)
                if match is None:
                    raise PlatformError.invalid(f"Range {given!r}")
                offset = int(match.group(1))
                if match.group(2):
                    length = int(match.group(2)) - offset + 1
            data, file = ns.get_object(path, offset, length)
            response = web.Response(status=200, body=b"" if method == "HEAD" else data)
            if method == "HEAD":
                response.headers["Content-Length"] = str(len(data))
            response.headers["Content-Type"] = "application/octet-stream"
            response.headers["X-v3io-transaction-verifier"] = Namespace.verifier(file)
            return response
        if method in ("PUT", "POST"):
            append = request.headers.get("Range") == "-1"
            file = ns.put_object(path, body, append=append)
            response = web.Response(status=200)
            response.headers["X-v3io-transaction-verifier"] = Namespace.verifier(file)
            return response
        if method == "DELETE":
            ns.delete_object(path)
            return web.Response(status=204)
        raise PlatformError.unsupported(f"{method} {path}")

    # ---- the emulator's own requests
    async def _control(self, request, what):
        if what == "faults":
            if request.method == "GET":
                return _json([fault.to_dict() for fault in self.faults.list()])
            if request.method == "DELETE":
                self.faults.clear()
                return web.Response(status=204)
            if request.method == "POST":
                try:
                    spec = _loads(await request.read())
                    specs = spec if isinstance(spec, list) else [spec]
                    for one in specs:
                        self.faults.add(Fault.from_dict(one))
                except (ValueError, TypeError) as ex:
                    return _error(PlatformError.invalid(f"fault: {ex}"))
                return web.Response(status=204)
        if what == "requests" and request.method == "GET":
            return _json(
                [
                    {"method": m, "path": p, "operation": o, "body": b.decode("utf-8", "replace")}
                    for m, p, o, b in self.requests
                ]
            )
        if what == "reset" and request.method == "POST":
            self.namespace.clear()
            self.faults.clear()
            self.requests.clear()
            return web.Response(status=204)
        return _error(PlatformError.unsupported(f"{request.method} /_emulator/{what}"))


def _refusals(fault):
    """For a throttle_records fault: per shard, the record from which on it refuses."""
    starts = {}

    def reject(shard, i):
        if shard not in starts:
            start = 0
            while not fault.refuses_record():
                start += 1
            starts[shard] = start
        return i >= starts[shard]

    return reject


def _json(value, status=200):
    return web.Response(status=status, body=_dumps(value), content_type="application/json")


def _error(error):
    return _json(error.body(), status=error.status)


def _ok_item(file):
    response = web.Response(status=200)
    response.headers["X-v3io-transaction-verifier"] = Namespace.verifier(file)
    return response


def _drop(request):
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise ConnectionResetError("the V3IO emulator dropped the connection (a fault)")
