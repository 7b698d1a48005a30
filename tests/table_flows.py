"""Helpers for the table tests: run a list of steps behind a SyncEmitSource or an AsyncEmitSource
and collect what comes out."""

import asyncio
import datetime as dt

from storey import AsyncEmitSource, Reduce, SyncEmitSource, build_flow
from storey.dtypes import Event

T0 = dt.datetime(2020, 7, 21, 21, 40, tzinfo=dt.UTC)

SOURCES = ["sync", "async"]


def _emit_args(item, i):
    """(element, key, event_time) for an item: an Event, a (body, key) pair or a bare body."""
    if isinstance(item, Event):
        return item, None, None
    if isinstance(item, tuple):
        body, key = item
    else:
        body, key = item, None
    return body, key, T0 + dt.timedelta(minutes=i)


def run_flow(source, steps, items, collect=True, full_event=False, **source_kwargs):
    """Runs `[source, *steps]` (plus a collecting Reduce) on `items` and returns the termination
    result: the bodies (Events with full_event=True) that reached the end."""
    tail = [Reduce([], lambda acc, x: acc + [x], full_event=full_event)] if collect else []
    if source == "sync":
        controller = build_flow([SyncEmitSource(**source_kwargs), *steps, *tail]).run()
        for i, item in enumerate(items):
            element, key, time = _emit_args(item, i)
            controller.emit(element, key=key, event_time=time)
        controller.terminate()
        return controller.await_termination()

    async def main():
        controller = build_flow([AsyncEmitSource(**source_kwargs), *steps, *tail]).run()
        for i, item in enumerate(items):
            element, key, time = _emit_args(item, i)
            await controller.emit(element, key=key, event_time=time)
        await controller.terminate()
        return await controller.await_termination()

    return asyncio.run(main())


def run_batches(steps, batches):
    """Feeds ready-made `EventBatch`es through `steps` behind a bare entry step, then terminates
    the flow; returns the termination result."""
    from storey.flow import Flow, build_flow
    from storey.runtime import FlowRuntime

    class Entry(Flow):
        _legal_first_step = True

    entry = Entry()
    build_flow([entry, *steps])

    async def main():
        runtime = FlowRuntime(entry)
        runtime._bind_loop()
        try:
            for batch in batches:
                await runtime.run_batch(batch)
            return await entry._terminate()
        finally:
            for step in runtime.steps:
                step._close()

    return asyncio.run(main())
