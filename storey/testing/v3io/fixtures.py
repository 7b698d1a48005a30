"""pytest fixtures of the V3IO emulator: `pytest_plugins = ["storey.testing.v3io.fixtures"]`.

- `v3io_emulator`: an emulator for the test module (in this process), emptied and without faults
  for each test;
- `v3io_env`: the same, with V3IO_API and V3IO_ACCESS_KEY set for the test.
"""

import pytest

from .emulator import V3ioEmulator


@pytest.fixture(scope="module")
def _v3io_emulator_server():
    with V3ioEmulator() as emulator:
        yield emulator


@pytest.fixture
def v3io_emulator(_v3io_emulator_server):
    """A running V3IO emulator (`url`, `env()`, `inject(...)`, `items(path)`, `records(path)`),
    empty, without faults."""
    _v3io_emulator_server.reset()
    yield _v3io_emulator_server
    _v3io_emulator_server.clear_faults()


@pytest.fixture
def v3io_env(v3io_emulator, monkeypatch):
    """`v3io_emulator`, with V3IO_API and V3IO_ACCESS_KEY pointing at it."""
    for name, value in v3io_emulator.env().items():
        monkeypatch.setenv(name, value)
    return v3io_emulator
