"""Test helpers that drive a flow's runtime directly: a list of steps, a list of events, and the
batches to cut them into.

`run_steps` builds the graph behind a bare entry step, feeds `EventBatch`es through
the source's `_emit`, terminates the flow and returns what every `Capture` step saw plus the
termination result; `run_batches` does the same with ready-made batches. Feeding the same events
in different batch splits must give the same answer: that is the engine property
(tests/test_engine_property.py).
"""

import asyncio
import copy
import datetime as dt

import numpy as np

from storey.core.batch import EventBatch
from storey.core.columns import Columns
from storey.engine.runtime import FlowRuntime
from storey.flow import Flow, build_flow

T0 = dt.datetime(2020, 7, 21, 21, 40, tzinfo=dt.UTC)


class Capture(Flow):
    """Records (body, key, time, id) of every event that reaches it (bodies deep-copied), and
    passes the events on. With `full=True` records the metadata fields too."""

    _takes_batches = True  # its _do takes EventBatches

    def __init__(self, full=False, **kwargs):
        super().__init__(**kwargs)
        self.full = full
        self.seen = []

    async def _do(self, batch):
        for event in batch.events():
            record = (copy.deepcopy(event.body), copy.deepcopy(event.key), event.time, event.id)
            if self.full:
                record += (event.headers, event.method, event.path, event.content_type)
            self.seen.append(record)
        await self._emit(batch)


class _Entry(Flow):
    """The bare first step that batches are fed into."""

    _legal_first_step = True


def make_events(bodies, keys=None, times=None):
    """(body, key, time, id) tuples: keys default to None, times to one second apart from T0,
    ids to 'id-<i>'."""
    n = len(bodies)
    keys = keys if keys is not None else [None] * n
    times = times if times is not None else [T0 + dt.timedelta(seconds=i) for i in range(n)]
    return [(bodies[i], keys[i], times[i], f"id-{i}") for i in range(n)]


def _columns_of(bodies):
    """`Columns` for dict bodies sharing one set of scalar fields, else None."""
    if not bodies or not all(isinstance(b, dict) for b in bodies):
        return None
    names = list(bodies[0])
    if any(list(b) != names for b in bodies):
        return None
    data = {}
    for name in names:
        values = [b[name] for b in bodies]
        kinds = {type(v) for v in values}
        if kinds == {int}:
            data[name] = np.array(values, dtype=np.int64)
        elif kinds == {float}:
            data[name] = np.array(values, dtype=np.float64)
        elif kinds == {str}:
            data[name] = np.array(values, dtype=object)
        else:
            return None
    return Columns(data, len(bodies))


def to_batch(events, columns=False):
    """An `EventBatch` of (body, key, time, id) tuples; bodies as `Columns` when asked and possible."""
    bodies = [copy.deepcopy(e[0]) for e in events]
    cols = _columns_of(bodies) if columns else None
    return EventBatch(
        len(events),
        bodies=None if cols is not None else bodies,
        columns=cols,
        keys=[copy.deepcopy(e[1]) for e in events],
        time_values=[e[2] for e in events],
        ids=[e[3] for e in events],
    )


def split(events, sizes):
    """`events` cut into consecutive batches of the given sizes (the last one takes the rest)."""
    out = []
    start = 0
    for size in sizes:
        if start >= len(events):
            break
        out.append(events[start : start + size])
        start += size
    if start < len(events):
        out.append(events[start:])
    return out


def _run_graph(steps, batches):
    """Feeds `batches` through `build_flow([entry, *steps])` and terminates the flow; returns the
    steps of the graph (depth-first) and the termination result."""
    entry = _Entry()
    build_flow([entry, *steps])

    async def main():
        runtime = FlowRuntime(entry)
        runtime._bind_loop()
        try:
            for batch in batches:
                await runtime.source._emit(batch)
            result = await entry._terminate()
            await runtime.run_at_end()
            return runtime.steps, result
        finally:
            for step in runtime.steps:
                step._close()

    return asyncio.run(main())


def run_batches(steps, batches):
    """Feeds ready-made `EventBatch`es through `steps` behind a bare entry step, then terminates
    the flow; returns the termination result."""
    return _run_graph(steps, batches)[1]


def run_steps(steps, events, sizes=None, columns=False):
    """Runs the flow `build_flow([entry, *steps])` on `events` fed in batches of `sizes` (one
    batch when None). Returns (captures, result): for each `Capture` step of the graph, in
    depth-first order, the list of records it saw; and the termination result."""
    parts = split(events, sizes) if sizes is not None else [events]
    graph, result = _run_graph(steps, [to_batch(part, columns) for part in parts])
    return [step.seen for step in graph if isinstance(step, Capture)], result


def encoded(records, with_id=False):
    """`Capture` records in the conformance cases' encoding ({'body', 'key', 'time'[, 'id']})."""
    from tests.support.conformance import encode

    out = []
    for body, key, time, id_, *_ in records:
        item = {"body": encode(body), "key": encode(key), "time": encode(time)}
        if with_id:
            item["id"] = encode(id_)
        out.append(item)
    return out


def emit_all(controller, events):
    """Emits (body, key, time) tuples (key/time may be None) with a `FlowController`."""
    for body, key, time in events:
        controller.emit(body, key=key, event_time=time)
