"""The `storey` command run as from a user's terminal: its stderr on a pseudo-terminal."""

import fcntl
import os
import pathlib
import pty
import struct
import subprocess
import sys
import termios

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def storey_on_a_terminal(*args):
    """Runs `python -m storey ARGS` with its stderr on a terminal of 24 rows and 100 columns;
    returns its return code, its stdout (text) and what the terminal showed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # rows, columns
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "storey", *args], stdout=subprocess.PIPE, stderr=follower, env=env, text=True
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    out, _ = process.communicate(timeout=300)
    os.close(leader)
    return process.returncode, out, b"".join(chunks).decode()
