import os
import time

# Naive datetimes are UTC in storey whatever the zone; run the tests in another zone to prove it.
os.environ.setdefault("TZ", "America/New_York")
time.tzset()

# the V3IO emulator's fixtures (`v3io_emulator`, `v3io_env`), as users get them
pytest_plugins = ["storey.testing.v3io.fixtures"]
