"""Running the V3IO emulator: in this process (a thread with its own event loop), or in a process
of its own, on a local port."""

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from aiohttp import web

from .faults import Fault, Faults
from .namespace import Namespace
from .web_api import WebApi

__all__ = ["EmulatorProcess", "V3ioEmulator", "serve"]

DEFAULT_ACCESS_KEY = "emulator"


def _quiet():
    # a fault that drops a connection is a handler error to aiohttp: not worth a traceback
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)


async def _start(api, host, port):
    _quiet()
    server = web.Server(api.handle, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]
    return runner, bound


class _Address:
    """How storey reaches an emulator listening on `host` and `port`, with `access_key`."""

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def env(self):
        """The environment variables that point storey's V3IO steps at this emulator."""
        return {"V3IO_API": self.url, "V3IO_ACCESS_KEY": self.access_key or DEFAULT_ACCESS_KEY}


class V3ioEmulator(_Address):
    """An emulator of the V3IO web API (key-value tables, objects, streams) serving on
    `host`:`port` (a free port when 0), in a thread of this process, until `stop()`; a context
    manager. Point a client at `url` (or set `env()`: V3IO_API and V3IO_ACCESS_KEY).

    :param port: the port to serve on; 0 picks a free one.
    :param access_key: the only access key accepted; None accepts any (but requires one).
    :param host: the address to serve on. Defaults to 127.0.0.1.
    :param clock: the time, in ns since the epoch (arrival times, retention, modification times).
    """

    def __init__(self, port=0, access_key=None, host="127.0.0.1", clock=time.time_ns):
        self.host = host
        self.port = port
        self.access_key = access_key
        self.namespace = Namespace(clock)
        self.faults = Faults()
        self.api = WebApi(self.namespace, self.faults, access_key)
        self._loop = None
        self._thread = None
        self._runner = None

    def start(self):
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure = []

        def run():
            asyncio.set_event_loop(loop)
            try:
                self._runner, self.port = loop.run_until_complete(_start(self.api, self.host, self.port))
            except BaseException as ex:  # reported to start()
                failure.append(ex)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="v3io-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self):
        if self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- faults and what was stored
    def inject(self, kind, **kwargs):
        """Adds a fault (see `storey.testing.v3io.faults.Fault`) and returns it."""
        return self.faults.add(Fault(kind, **kwargs))

    def clear_faults(self):
        self.faults.clear()

    def reset(self):
        """Forgets everything stored, every fault and every request seen."""
        self.namespace.clear()
        self.faults.clear()
        self.api.requests.clear()

    def items(self, path):
        """{item name: attributes} of the table at 'container/path'."""
        return self.namespace.items(path)

    def records(self, path):
        """[[data of each record] for each shard] of the stream at 'container/path'."""
        return self.namespace.records(path)

    @property
    def requests(self):
        """(method, path, operation, body) of the requests received (the latest 1000)."""
        return list(self.api.requests)


def serve(port, host="127.0.0.1", access_key=None):
    """Serves the emulator on `host`:`port` until interrupted (blocking)."""

    async def main():
        api = WebApi(Namespace(), Faults(), access_key)
        runner, bound = await _start(api, host, port)
        print(f"V3IO emulator serving on http://{host}:{bound} (V3IO_API=http://{host}:{bound})", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def _free_port(host):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmulatorProcess(_Address):
    """The emulator in a process of its own (`python -m storey.testing.v3io`), for clients that
    should not share this process's interpreter; a context manager. Faults are added through
    the emulator's control requests."""

    def __init__(self, port=0, host="127.0.0.1", access_key=None):
        self.host = host
        self.port = port or _free_port(host)
        self.access_key = access_key
        self._process = None

    def start(self, timeout=30):
        command = [sys.executable, "-m", "storey.testing.v3io", "--port", str(self.port), "--host", self.host]
        if self.access_key:
            command += ["--access-key", self.access_key]
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        }
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
        line = self._process.stdout.readline()
        if not line:
            self._process.wait(timeout)
            raise RuntimeError(f"the V3IO emulator did not start (exit status {self._process.returncode})")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=1):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the V3IO emulator does not answer on {self.url}")

    def stop(self):
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process.stdout.close()
            self._process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _control(self, method, what, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/_emulator/{what}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def inject(self, kind, **kwargs):
        self._control("POST", "faults", {"kind": kind, **kwargs})

    def clear_faults(self):
        self._control("DELETE", "faults")

    def reset(self):
        self._control("POST", "reset")

    @property
    def requests(self):
        return json.loads(self._control("GET", "requests"))
