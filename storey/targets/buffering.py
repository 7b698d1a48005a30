"""The step under every file target: events buffered per group (a partition directory, or a
batching key) and written when a group holds `max_events`, when its timer fires, and at
termination. What is written becomes the output when the flow closes after terminating
without an error; when the flow failed, a target abandons it (file targets leave no output).

Writes happen in the order they would if each event went through the step on its own: a group
is written at the event that fills it, and at termination the groups still buffered are written
in the order their first buffered event arrived.
"""

import numpy as np

from ..engine.graph import Flow


class _Buffer:
    __slots__ = ("chunks", "count", "since", "timer")

    def __init__(self, since):
        self.chunks = []
        self.count = 0
        self.since = since
        self.timer = None


class BufferedFileTarget(Flow):
    """Base of the file targets: subclasses turn a batch into a chunk (`_prepare`), say which
    group each event belongs to (`_groups`) and write a group's chunks (`_write`)."""

    # Whether each write holds exactly max_events events (a file per write). When writes only
    # append to one stream, a batch that overfills the buffer is written whole instead.
    _split_writes = True

    def __init__(self, max_events=None, flush_after_seconds=None, **kwargs):
        super().__init__(**kwargs)
        self._max_events = max_events
        self._flush_after_seconds = flush_after_seconds
        self._buffers = {}
        self._seen = 0
        self._finished = False

    def _init(self):
        self._buffers = {}
        self._seen = 0
        self._finished = False

    # ---- for subclasses
    def _prepare(self, batch):
        """The data to write for the batch's events: an object with len(), take(indices)."""
        raise NotImplementedError

    def _groups(self, batch):
        """(group names, inverse) for the batch's events, or None when all share one group."""
        return None

    def _write(self, group, chunks):
        """Writes the chunks of one group (in arrival order)."""
        raise NotImplementedError

    def _drain(self):
        """Called at termination after the last write: waits for writes still running (raising
        their errors)."""

    def _finish(self):
        """Called once when the flow closes after terminating without an error: the output
        written becomes complete (files closed and given their final names)."""

    def _abandon(self):
        """Called once, instead of `_finish`, when the flow closes after an error. By default
        the events processed are written, as they are for a target that cannot take back what it
        wrote; file targets remove what they wrote instead."""
        try:
            self._flush_all()
        finally:
            self._finish()

    # ---- engine
    async def _do(self, batch):
        if batch.n:
            chunk = self._prepare(batch)
            grouping = self._groups(batch)
            if grouping is None:
                self._add("", chunk, np.arange(batch.n), None)
            else:
                self._add_grouped(chunk, *grouping)
            self._seen += batch.n
        await self._emit(batch)

    def _add_grouped(self, chunk, groups, inverse):
        if len(groups) == 1:
            self._add(groups[0], chunk, np.arange(len(inverse)), None)
            return
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(groups) + 1))
        writes = []
        for g, group in enumerate(groups):
            positions = order[bounds[g] : bounds[g + 1]]
            self._add(group, chunk, positions, writes)
        # each group's writes happen at the event that fills it: replay them in that order
        writes.sort(key=lambda w: w[0])
        for _, group, chunks in writes:
            self._write(group, chunks)

    def _add(self, group, chunk, positions, writes):
        """Buffers the events of `chunk` at `positions` (ascending) in `group`; full buffers are
        written at once, or appended to `writes` as (position, group, chunks) when given."""
        max_events = self._max_events
        start = 0
        total = len(positions)
        whole = total == len(chunk)
        while start < total:
            buf = self._buffers.get(group)
            if buf is None:
                buf = self._buffers[group] = _Buffer(self._seen + int(positions[start]))
                self._arm_timer(group, buf)
            room = total - start if max_events is None or not self._split_writes else max_events - buf.count
            take = min(room, total - start)
            piece = chunk if whole and take == total else chunk.take(positions[start : start + take])
            buf.chunks.append(piece)
            buf.count += take
            start += take
            if max_events is not None and buf.count >= max_events:
                del self._buffers[group]
                self._cancel_timer(buf)
                if writes is None:
                    self._write(group, buf.chunks)
                else:
                    writes.append((int(positions[start - 1]), group, buf.chunks))

    def _arm_timer(self, group, buf):
        if self._flush_after_seconds is None or self._runtime is None or self._runtime.loop is None:
            return

        async def flush_group():
            if self._buffers.get(group) is buf:
                del self._buffers[group]
                self._write(group, buf.chunks)

        buf.timer = self._runtime.schedule(self._flush_after_seconds, flush_group)

    @staticmethod
    def _cancel_timer(buf):
        if buf.timer is not None:
            buf.timer.cancel()
            buf.timer = None

    def _drop_buffers(self):
        """Forgets the events still buffered (the flow failed)."""
        for buf in self._buffers.values():
            self._cancel_timer(buf)
        self._buffers = {}

    def _flush_all(self):
        buffers = sorted(self._buffers.items(), key=lambda item: item[1].since)
        self._buffers = {}
        for group, buf in buffers:
            self._cancel_timer(buf)
            self._write(group, buf.chunks)

    async def _on_terminate(self):
        self._flush_all()
        self._drain()
        return None

    def _close(self):
        if self._finished:
            return
        self._finished = True
        runtime = self._runtime
        if runtime is not None and runtime.error is not None:
            self._abandon()
        else:
            self._flush_all()
            self._finish()
