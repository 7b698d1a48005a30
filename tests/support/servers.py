"""Throw-away database servers for the tests, on a free loopback port, stopped after use.

PostgreSQL comes from the machine's server binaries (`initdb` and `pg_ctl`, run as the `postgres`
user when the tests run as root); Redis from Debian's `redis-server`. A test that needs a server
it cannot start fails: the servers are part of what CI installs (.ci/run).
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return os.path.dirname(found[-1])
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return os.path.dirname(pg_ctl)
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed: see .ci/run")


class _Server:
    """A server that a `with` block starts, and stops and removes (with its folder) at its end."""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.remove()


class PostgresServer(_Server):
    """A PostgreSQL server in a temporary folder: `url` reaches its `postgres` database."""

    def __init__(self):
        self.bin = _postgres_bin()
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="storey-pg-")
        self.data = os.path.join(self.folder, "data")
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:
            record = pwd.getpwnam("postgres")
            os.chown(self.folder, record.pw_uid, record.pw_gid)

    @property
    def url(self):
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args, check=True):
        command = [os.path.join(self.bin, args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def start(self):
        if not os.path.exists(self.data):
            self._run("initdb", "-D", self.data, "-A", "trust", "-U", self.user, "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        self._run(
            "pg_ctl", "-D", self.data, "-o", options, "-l", os.path.join(self.folder, "log"), "-w", "start"
        )
        return self

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def restart(self):
        self.stop()
        self.start()

    def remove(self):
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class RedisServer(_Server):
    """A redis-server in a temporary folder, keeping nothing on disk while it runs (no snapshots,
    no append-only file); `restart()` saves what it holds on shutdown and loads it again, as a
    server restarted by its operator does. `url` reaches its database 0."""

    def __init__(self):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed: see .ci/run")
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="storey-redis-")
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.folder]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
        with open(os.path.join(self.folder, "log"), "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}: see {self.folder}/log")
            time.sleep(0.01)
        return self

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, save=False):
        """Shuts the server down (saving what it holds first, with `save`)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(b"SHUTDOWN SAVE\r\n" if save else b"SHUTDOWN NOSAVE\r\n")
                sock.recv(16)
        except OSError:
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self):
        self.stop(save=True)
        self.start()

    def remove(self):
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
