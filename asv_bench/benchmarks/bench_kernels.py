"""The window kernels alone: 1M (and 100k) events over 10k keys through the `sliding`/`fixed` kernels,
arrays in and arrays out (no flow, no Python per event).

- one aggregator (sum, count, avg, min, max over 1h/6h/24h, 10m period; fixed 1h/6h/24h), events
  over 1 day (about one event per key per period) and over 30 days (sparse keys: most periods of a
  window are empty);
- every aggregation of the registry alone, over the same windows (the registry drives the cases);
- the batch split in two calls by key (what the steps do on two cores), run one after the other.

Run with `cd asv_bench && asv run --python=same` (the installed project is measured).
"""

import numpy as np

from storey.dtypes import FieldAggregator, FixedWindows, SlidingWindows
from storey.kernels import kernels
from storey.kernels.registry import AGGREGATIONS
from storey.table.aggregation_state import AggregationState

N = 1_000_000
# events per kernel call: the sliding and fixed kernels are timed at both sizes
SIZES = [100_000, N]
KEYS = 10_000
FEATURES = ["sum", "count", "avg", "min", "max"]


def _events(days, n=N, keys=KEYS, seed=0):
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "ns").astype(np.int64)
    times = start + np.sort(rng.integers(0, days * 86_400 * 10**9, n))
    slots = rng.integers(0, keys, n).astype(np.int64)
    values = np.round(rng.random((1, n)) * 100, 2)
    return times, slots, values


class _Kernel:
    """Runs one group of aggregators over prepared arrays; the state is made (and touched) in
    setup, so that the timing is the kernel's."""

    def prepare(self, aggregators, events):
        state = AggregationState()
        state.register(aggregators)
        state.slots_of([f"k{i}" for i in range(KEYS)])
        self.group = state.groups[0]
        self.group.state[:] = 0.0
        self.times, self.slots, self.values = events
        n = len(self.times)
        self.valid = np.ones((1, n), dtype=np.uint8)
        self.emitted = np.zeros(0, dtype=np.uint8)  # every event emitted, as with EmitEveryEvent
        self.out = np.empty((self.group.n_features, n))
        self.flags = np.zeros((self.group.n_features, n), dtype=np.uint8)
        k = kernels()
        self.update = k.fixed_update if self.group.fixed else k.sliding_update
        self.fresh = self.group.istate.copy()
        # compiled (or loaded from the cache) before timing
        self.update(
            self.group.cfg,
            self.group.max_values,
            self.times[:1],
            self.slots[:1],
            self.values[:, :1],
            self.valid[:, :1],
            self.emitted,
            self.group.state,
            self.group.istate,
            self.out[:, :1].copy(),
            self.flags[:, :1].copy(),
            0,
            1,
        )

    def run(self, parts=1):
        g = self.group
        g.istate[:] = self.fresh
        for part in range(parts):
            self.update(
                g.cfg,
                g.max_values,
                self.times,
                self.slots,
                self.values,
                self.valid,
                self.emitted,
                g.state,
                g.istate,
                self.out,
                self.flags,
                part,
                parts,
            )


class SlidingKernel(_Kernel):
    params = [[1, 30], SIZES]
    param_names = ["days", "events"]
    timeout = 300

    def setup(self, days, events):
        aggregator = FieldAggregator("amount", "v", FEATURES, SlidingWindows(["1h", "6h", "24h"], "10m"))
        self.prepare([aggregator], _events(days, n=events))

    def time_sliding(self, days, events):
        self.run()

    def time_sliding_in_two_parts(self, days, events):
        self.run(parts=2)


class FixedKernel(_Kernel):
    params = [[1, 30], SIZES]
    param_names = ["days", "events"]
    timeout = 300

    def setup(self, days, events):
        aggregator = FieldAggregator("amount", "v", FEATURES, FixedWindows(["1h", "6h", "24h"]))
        self.prepare([aggregator], _events(days, n=events))

    def time_fixed(self, days, events):
        self.run()


class EachAggregation(_Kernel):
    """Every aggregation of the registry alone, over sliding 1h/6h/24h windows."""

    params = sorted(AGGREGATIONS)
    param_names = ["aggregation"]
    timeout = 300

    def setup(self, aggregation):
        aggregator = FieldAggregator("a", "v", [aggregation], SlidingWindows(["1h", "6h", "24h"], "10m"))
        self.prepare([aggregator], _events(1, n=N // 4))

    def time_aggregation(self, aggregation):
        self.run()
