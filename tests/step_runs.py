"""Running steps behind a SyncEmitSource or an AsyncEmitSource, for the tests of single steps.

`run(kind, steps, events)` builds `build_flow([Source(), *steps])`, emits the events ('sync'
through a FlowController from this thread, 'async' through an AsyncFlowController in an event
loop), terminates the flow and returns its termination result. `Capture` records what reaches it
in the conformance cases' encoding.
"""

import asyncio

import pytest

from storey import AsyncEmitSource, Event, Flow, SyncEmitSource, build_flow
from tests.conformance import encode_event

KINDS = ["sync", "async"]
SOURCES = {"sync": SyncEmitSource, "async": AsyncEmitSource}


class Capture(Flow):
    """Records each event that reaches it (encoded when it arrives) and passes it on."""

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
