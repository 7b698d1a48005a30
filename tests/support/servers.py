"""Throw-away database servers for the tests, on a free loopback port, stopped after use.

PostgreSQL comes from the machine's server binaries (`initdb` and `pg_ctl`, run as the `postgres`
user when the tests run as root). A test that needs a server it cannot start fails: the servers
are part of what CI installs.
"""

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile


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


class PostgresServer:
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


@contextlib.contextmanager
def postgres_server():
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.remove()
