"""Steps that group events into batches: the `_Batching` base class and `Batch`.

`_Batching` collects events per group (all events, the event key, a body field or a function of
the event) until a group holds `max_events` events, until `flush_after_seconds` have passed since
the group's first event, or until the flow terminates; subclasses decide what to do with each
finished group (`_flush`). Groups span input batches: what a flow emits does not depend on how its
events were cut into batches.
"""

import functools
from collections.abc import Callable
from typing import Any

from ..core.batch import EventBatch
from ..core.checks import check_positive_int, check_seconds
from ..dtypes.event import Event
from ..engine.graph import Flow
from .functions import element_of
from .grouping import check_group_key, group_keys

__all__ = ["Batch"]


class _Group:
    """The events a group holds: `parts` from earlier input batches, `indices` in the current one."""

    __slots__ = ("parts", "indices", "count", "timer")

    def __init__(self):
        self.parts = []
        self.indices = []
        self.count = 0
        self.timer = None

    def keep(self, batch):
        """Moves the events at `indices` of `batch` into `parts`."""
        if self.indices:
            self.parts.append(batch.take(self.indices))
            self.indices = []

    def events(self, batch=None):
        """All the group's events, as one batch (`batch` is the current input batch, if any)."""
        if batch is not None:
            self.keep(batch)
        return EventBatch.concat(self.parts)


class _Batching(Flow):
    """Base class of steps that collect events into batches, per group, before acting on them.

    :param max_events: maximum number of events per batch; None to collect until
        `flush_after_seconds` have passed or the flow terminates.
    :param flush_after_seconds: maximum number of seconds a batch waits after its first event.
    :param key: how events are grouped: None (one group), '$key' (by event key), the name of a
        body field, or a function of the `Event`.

    Subclasses implement `async _flush(finished)`, which receives the finished groups as a list
    of (group key, `EventBatch`), in the order they were completed.
    """

    def __init__(
        self,
        max_events: int | None = None,
        flush_after_seconds: float | None = None,
        key: str | Callable[[Event], Any] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._describe_batching(max_events, flush_after_seconds, key)
        if max_events is not None:
            max_events = check_positive_int(self.name, "max_events", max_events)
        if flush_after_seconds is not None:
            check_seconds(self.name, "flush_after_seconds", flush_after_seconds)
        check_group_key(self.name, key)
        self._max_events = max_events
        self._flush_after_seconds = flush_after_seconds
        self._key = key
        self._groups = {}

    def _describe_batching(self, max_events, flush_after_seconds, key):
        if max_events:
            self._describe(max_events=max_events)
        if flush_after_seconds is not None:
            self._describe(flush_after_seconds=flush_after_seconds)
        if isinstance(key, str):
            self._describe(key=key)

    def _init(self):
        self._cancel_timers()
        self._groups = {}

    def _close(self):
        self._cancel_timers()

    def _cancel_timers(self):
        for group in self._groups.values():
            if group.timer is not None:
                group.timer.cancel()

    async def _flush(self, finished):
        """Acts on finished groups: a list of (group key, `EventBatch`)."""
        raise NotImplementedError

    def _new_group(self, key):
        group = self._groups[key] = _Group()
        if self._flush_after_seconds is not None:
            group.timer = self._runtime.schedule(
                self._flush_after_seconds, functools.partial(self._flush_on_timer, key, group)
            )
        return group

    def _finish(self, key, group, batch, finished):
        del self._groups[key]
        if group.timer is not None:
            group.timer.cancel()
        finished.append((key, group.events(batch)))

    async def _do(self, batch):
        finished = []
        error = None
        if self._key is None:
            self._collect_ungrouped(batch, finished)
        else:
            keys, error = group_keys(batch, self._key)
            self._collect(batch, keys, finished)
        if finished:
            await self._flush(finished)
        if error is not None:
            error.add_note(f"raised in step {self.name} while extracting the batching key")
            raise error

    def _collect_ungrouped(self, batch, finished):
        max_events = self._max_events
        start = 0
        while start < batch.n:
            group = self._groups.get(None) or self._new_group(None)
            stop = batch.n if max_events is None else min(batch.n, start + max_events - group.count)
            group.parts.append(batch.slice(start, stop))
            group.count += stop - start
            start = stop
            if group.count == max_events:
                self._finish(None, group, None, finished)

    def _collect(self, batch, keys, finished):
        groups = self._groups
        max_events = self._max_events
        touched = []
        for i, key in enumerate(keys):
            group = groups.get(key)
            if group is None:
                group = self._new_group(key)
            if not group.indices:
                touched.append(group)
            group.indices.append(i)
            group.count += 1
            if group.count == max_events:
                self._finish(key, group, batch, finished)
        for group in touched:
            group.keep(batch)

    async def _flush_on_timer(self, key, group):
        if self._groups.get(key) is group:
            del self._groups[key]
            await self._flush([(key, group.events())])

    async def _on_terminate(self):
        groups = self._groups
        self._cancel_timers()
        self._groups = {}
        if groups:
            await self._flush([(key, group.events()) for key, group in groups.items()])
        return None


class Batch(_Batching):
    """Batches events into lists of up to max_events events. Each emitted list contained max_events
    events, unless flush_after_seconds seconds have passed since the first event in the batch was
    received, at which the batch is emitted with potentially fewer than max_events event.

    The emitted event's body is the list of the batched bodies (of the batched `Event` objects with
    `full_event=True`); its key is None and its time the time of the batch's first event. Batches
    still open when the flow terminates are emitted then, in the order their first events arrived.

    :param max_events: maximum number of events per emitted batch. Set to None to emit all events in
        one batch on flow termination.
    :param flush_after_seconds: maximum number of seconds to wait before a batch is emitted.
    :param key: the key by which events are grouped. By default (None), events are not grouped.
        '$key' groups events by `Event.key`, a string by `Event.body[key]`, and a function of the
        `Event` by what it returns.
    :param name: name of this step, as it should appear in logs. Defaults to class name (Batch).
    :param full_event: whether the batches hold `Event` objects (True) or only bodies (False, the
        default).
    """

    async def _flush(self, finished):
        n = len(finished)
        if self._full_event:
            bodies = [events.events() for _, events in finished]
        elif self._input_path:
            bodies = [
                [element_of(b, self._input_path) for b in events.bodies_to_change()] for _, events in finished
            ]
        else:
            bodies = [list(events.bodies_to_change()) for _, events in finished]
        out = EventBatch(
            n,
            bodies=bodies,
            keys=[None] * n,
            time_values=[events.slice(0, 1).time_values[0] for _, events in finished],
            ids=[None] * n,
        )
        await self._emit(out)
