import os
import time

# Naive datetimes are UTC in storey whatever the zone; run the tests in another zone to prove it.
os.environ.setdefault("TZ", "America/New_York")
time.tzset()
