"""Running steps behind a SyncEmitSource or an AsyncEmitSource, for the tests of single steps.

`run(kind, steps, events)` builds `build_flow([Source(), *steps])`, emits the events ('sync'
through a FlowController from this thread, 'async' through an AsyncFlowController in an event
loop), terminates the flow and returns its termination result; `run_collected` adds a step that
collects what reaches the end; `RUNNERS` serves tests that build their flows themselves. `Capture`
records what reaches it in the conformance cases' encoding.
"""

import asyncio
import datetime as dt

import pytest

from storey import AsyncEmitSource, Event, Flow, Reduce, SyncEmitSource, build_flow
from tests.support.conformance import encode_event
from tests.support.engine import T0

KINDS = ["sync", "async"]
SOURCES = {"sync": SyncEmitSource, "async": AsyncEmitSource}


class Capture(Flow):
    """Records each event that reaches it (encoded when it arrives) and passes it on."""

    _takes_batches = True  # its _do takes EventBatches

    def __init__(self, id=False, **kwargs):
        super().__init__(**kwargs)
        self.with_id = id
        self.seen = []

    async def _do(self, batch):
        for event in batch.events():
            self.seen.append(encode_event(event, id=self.with_id))
        await self._emit(batch)


def _emit_args(item):
    if isinstance(item, Event):
        return (item,), {}
    if isinstance(item, tuple):
        body, key, time = item
        kwargs = {}
        if key is not None:
            kwargs["key"] = key
        if time is not None:
            kwargs["event_time"] = time
        return (body,), kwargs
    return (item,), {}


def run_source(kind, source, events):
    """Runs the flow starting at `source` (built already) on `events`; returns its result."""
    if kind == "sync":
        controller = source.run()
        for item in events:
            args, kwargs = _emit_args(item)
            controller.emit(*args, **kwargs)
        controller.terminate()
        return controller.await_termination()

    async def main():
        controller = source.run()
        for item in events:
            args, kwargs = _emit_args(item)
            await controller.emit(*args, **kwargs)
        await controller.terminate()
        return await controller.await_termination()

    return asyncio.run(main())


def run(kind, steps, events, **source_kwargs):
    """Runs `build_flow([Source(**source_kwargs), *steps])` on `events` (bodies, Events or
    (body, key, time) tuples); returns the termination result."""
    return run_source(kind, build_flow([SOURCES[kind](**source_kwargs), *steps]), events)


def run_collected(kind, steps, items, collect=True, full_event=False, **source_kwargs):
    """Runs `steps` behind a `kind` source on `items` (Events, (body, key) pairs or bodies; those
    that are not Events get times a minute apart from T0) and returns the termination result: with
    `collect`, the bodies (Events with `full_event`) that reached the end, in a list."""
    tail = [Reduce([], lambda acc, x: acc + [x], full_event=full_event)] if collect else []
    events = []
    for i, item in enumerate(items):
        if isinstance(item, Event):
            events.append(item)
        else:
            body, key = item if isinstance(item, tuple) else (item, None)
            events.append((body, key, T0 + dt.timedelta(minutes=i)))
    return run(kind, [*steps, *tail], events, **source_kwargs)


def run_sync(flow, events):
    """`run_source` for a flow that starts at a SyncEmitSource."""
    return run_source("sync", flow, events)


def run_async(flow, events):
    """`run_source` for a flow that starts at an AsyncEmitSource."""
    return run_source("async", flow, events)


# (source class, runner of a flow built on it), for tests that build their flows themselves
RUNNERS = [
    pytest.param(SyncEmitSource, run_sync, id="sync"),
    pytest.param(AsyncEmitSource, run_async, id="async"),
]
