"""An emulator of the V3IO web API, to run storey's V3IO steps locally and in tests.

    python -m storey.testing.v3io --port 8081     # then V3IO_API=http://127.0.0.1:8081

or, in Python, `with V3ioEmulator() as v3io: ...` (`v3io.url`, `v3io.env()`), or the pytest
fixture `v3io_emulator` (`pytest_plugins = ["storey.testing.v3io.fixtures"]`).

It serves what storey's V3IO driver and targets send, through the `v3io` client:

- key-value items: PutItem (whole items, or attributes merged with an UpdateMode), UpdateItem
  (update expressions and conditions: see `update_expressions`), GetItem and GetItems (attribute
  selection, filter expressions, Limit/Marker paging, segments); items carry the system
  attributes __name, __mtime_secs, __mtime_nsecs and answer with X-v3io-transaction-verifier;
- objects: GET (with Range), PUT (Range: -1 appends), DELETE, HEAD, e.g. a table's .schema file;
- streams: CreateStream, DescribeStream, UpdateStream, PutRecords (ShardId, PartitionKey or round
  robin; ClientInfo), SeekShard (EARLIEST, LATEST, SEQUENCE, TIME), GetRecords; records older
  than the retention period are dropped.

It is strict: a malformed request gets the platform's error (`platform_errors`). It does not
serve container listings, TSDB (the v3io-frames service: `TSDBTarget` takes an injected
`frames_client`), or authentication beyond requiring an access key. Faults (`faults`) drop
connections, stall, or refuse requests as a busy or failing platform does.
"""

from .emulator import EmulatorProcess, V3ioEmulator
from .faults import Fault

__all__ = ["EmulatorProcess", "Fault", "V3ioEmulator"]
