"""The flow engine on the live path and on one large batch.

- fire-and-forget: 100k `emit()` calls through Map -> Filter -> Reduce, then terminate;
- awaited: `emit(...).await_result()` through Map -> Complete, one event at a time (per-event
  latency, with its median and 99th percentile as tracked values);
- large batch: the same Map -> Filter -> Reduce pipeline fed 100k events as one `EventBatch`.

Run with `cd asv_bench && asv run --python=same` (the installed project is measured).
"""

import datetime as dt
import time

from storey import Complete, Filter, Map, Reduce, SyncEmitSource, build_flow
from storey.core import batch as batches
from storey.engine.graph import drive
from storey.engine.runtime import FlowRuntime
from storey.flow import Flow

N = 100_000
AWAITED = 10_000


def _map_filter_reduce():
    return [
        Map(lambda b: {**b, "y": b["x"] * 2}),
        Filter(lambda b: b["x"] % 3 != 0),
        Reduce(0, lambda acc, b: acc + b["y"]),
    ]


class FireAndForget:
    """100k emits through Map -> Filter -> Reduce."""

    timeout = 120

    def time_emit_map_filter_reduce(self):
        controller = build_flow([SyncEmitSource(), *_map_filter_reduce()]).run()
        emit = controller.emit
        for i in range(N):
            emit({"x": i})
        controller.terminate()
        controller.await_termination()

    def track_events_per_second(self):
        start = time.perf_counter()
        self.time_emit_map_filter_reduce()
        return N / (time.perf_counter() - start)

    track_events_per_second.unit = "events/s"


class Awaited:
    """Awaited emits through Map -> Complete, one at a time."""

    timeout = 120

    def setup(self):
        self.controller = build_flow(
            [SyncEmitSource(), Map(lambda b: {**b, "y": b["x"] * 2}), Complete()]
        ).run()
        for i in range(100):  # warm up
            self.controller.emit({"x": i}).await_result()

    def teardown(self):
        self.controller.terminate()
        self.controller.await_termination()

    def time_awaited_emit(self):
        emit = self.controller.emit
        for i in range(AWAITED):
            emit({"x": i}).await_result()

    def _latencies(self):
        emit = self.controller.emit
        clock = time.perf_counter
        latencies = []
        for i in range(AWAITED):
            start = clock()
            emit({"x": i}).await_result()
            latencies.append(clock() - start)
        latencies.sort()
        return latencies

    def track_latency_p50_us(self):
        latencies = self._latencies()
        return latencies[len(latencies) // 2] * 1e6

    def track_latency_p99_us(self):
        latencies = self._latencies()
        return latencies[int(len(latencies) * 0.99)] * 1e6

    def track_events_per_second(self):
        start = time.perf_counter()
        self.time_awaited_emit()
        return AWAITED / (time.perf_counter() - start)

    track_latency_p50_us.unit = "us"
    track_latency_p99_us.unit = "us"
    track_events_per_second.unit = "events/s"


class _Entry(Flow):
    _legal_first_step = True


class LargeBatch:
    """Map -> Filter -> Reduce fed 100k events as one batch (as a bulk source hands them on)."""

    timeout = 120

    def setup(self):
        start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        self.bodies = [{"x": i} for i in range(N)]
        self.keys = [f"k{i % 100}" for i in range(N)]
        self.times = [start + dt.timedelta(seconds=i) for i in range(N)]

    def _run(self):
        entry = _Entry()
        build_flow([entry, *_map_filter_reduce()])
        runtime = FlowRuntime(entry)
        batch = batches.EventBatch(
            N, bodies=[dict(b) for b in self.bodies], keys=self.keys, time_values=self.times
        )
        drive(runtime.run_batch(batch))
        return drive(entry._terminate())

    def time_map_filter_reduce(self):
        self._run()

    def track_events_per_second(self):
        start = time.perf_counter()
        self._run()
        return N / (time.perf_counter() - start)

    track_events_per_second.unit = "events/s"
