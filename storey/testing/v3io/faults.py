"""Faults the V3IO emulator can inject, to test what a client does when the platform misbehaves.

A `Fault` matches requests by operation (`GetItem`, `UpdateItem`, `PutRecords`, ... and
`GetObject`, `PutObject`, `DeleteObject`, `HeadObject` for objects) and path prefix, lets the
first `after` matching requests through, then acts on the next `times` of them (all of them when
`times` is None: the fault lasts for good), each with probability `probability`:

- "drop": the connection is closed before the request is carried out (nothing changes);
- "drop_after": the request is carried out, then the connection is closed without an answer (the
  client cannot know whether it happened);
- "stall": the request is carried out, and its answer comes `seconds` later;
- "error": the request is refused with `status` (503: throttled, 500: internal error; nothing
  changes);
- "throttle_records": PutRecords only: the request succeeds, but from a random record on, each
  shard's records are refused as throttled (FailedRecordCount > 0), as a busy shard answers.
"""

import random
import threading
from dataclasses import dataclass, field

__all__ = ["KINDS", "Fault", "Faults"]

KINDS = ("drop", "drop_after", "stall", "error", "throttle_records")


@dataclass
class Fault:
    """A fault of the emulator (see the module's docstring)."""

    kind: str
    operations: tuple = ()
    path: str = ""
    after: int = 0
    times: int | None = 1
    probability: float = 1.0
    status: int = 503
    seconds: float = 1.0
    seed: int | None = None
    # how many matching requests were seen, and how many the fault acted on
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Fault: kind must be one of {KINDS}, got {self.kind!r}")
        if isinstance(self.operations, str):
            self.operations = (self.operations,)
        self.operations = tuple(self.operations)
        if self.kind == "throttle_records" and set(self.operations) - {"PutRecords"}:
            raise ValueError("Fault: throttle_records applies to PutRecords only")
        if self.kind == "error" and self.status not in (500, 502, 503, 504, 429):
            raise ValueError(f"Fault: status must be a 5xx or 429, got {self.status!r}")
        if self.times is not None and self.times < 0 or self.after < 0:
            raise ValueError("Fault: after and times must not be negative")
        if not 0.0 < self.probability <= 1.0:
            raise ValueError(f"Fault: probability must be in (0, 1], got {self.probability!r}")
        self._random = random.Random(self.seed)

    @classmethod
    def from_dict(cls, spec):
        return cls(**spec)

    def to_dict(self):
        return {
            "kind": self.kind,
            "operations": list(self.operations),
            "path": self.path,
            "after": self.after,
            "times": self.times,
            "probability": self.probability,
            "status": self.status,
            "seconds": self.seconds,
            "seen": self.seen,
            "fired": self.fired,
        }

    def _matches(self, operation, path):
        if self.operations and operation not in self.operations:
            return False
        return path.lstrip("/").startswith(self.path.lstrip("/"))

    def _take(self):
        """Whether the fault acts on the request it matched (counting it)."""
        self.seen += 1
        if self.seen <= self.after or (self.times is not None and self.fired >= self.times):
            return False
        if self.probability < 1.0 and self._random.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def refuses_record(self):
        """For throttle_records: whether the next record of a shard is where refusals start."""
        return self._random.random() < 0.5


class Faults:
    """The faults of an emulator, first match first (thread-safe)."""

    def __init__(self):
        self._faults = []
        self._lock = threading.Lock()

    def add(self, fault):
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self):
        with self._lock:
            self._faults = []

    def list(self):
        with self._lock:
            return list(self._faults)

    def pick(self, operation, path):
        """The fault acting on this request, or None."""
        with self._lock:
            for fault in self._faults:
                if fault._matches(operation, path) and fault._take():
                    return fault
        return None
