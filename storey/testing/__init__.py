"""Tools for testing storey flows without the services they talk to.

- `storey.testing.v3io`: an emulator of the V3IO web API (key-value tables, objects, streams),
  on a local port: `python -m storey.testing.v3io --port 8081`, or `V3ioEmulator()` in a test.

Nothing in the library imports this package.
"""
