"""The first phase: a task per file of SOURCE sends each of its events to its key's partition.

The task runs the single-process backfill's own source step on its file, in a flow whose next
step (`SplitByKey`) selects, in each batch, the events of each partition (see `event_frames`),
and appends a partition's selections to its piece as frames of about a source batch's size. Each
event gets a sequence number, `unit << 40 | position`: its file's place in SOURCE, then its place
among the file's events, which is its arrival order in the single-process backfill. A task holds
at most about a source batch of events per partition until they are written, and fewer when
there are so many partitions that these would pass `PENDING_ROWS` in all.
"""

import numpy as np

from storey.flow import Flow, build_flow
from storey.sources.file_sources.dataframe_source import BATCH_ROWS

from .event_frames import encode, merge, select
from .key_partitions import partition_numbers
from .piece_files import PieceWriter
from .row_progress import RowReporter

# bits of a sequence number that number the events of one file (2**40: a trillion events)
POSITION_BITS = 40
# events a task gathers, in all partitions, before they are written as frames (some 250 MB of
# the sample payments' events)
PENDING_ROWS = 1 << 22


def frame_rows(partitions):
    """Events of a partition gathered before they are written: a source's batch, or fewer when
    there are many partitions (but not so few that a flow's fixed work per batch shows)."""
    return max(4096, min(BATCH_ROWS, PENDING_ROWS // partitions))


class SplitByKey(Flow):
    """Writes each event of the batches it takes to the piece of its key's partition; counts the
    events sent to each partition in `rows`."""

    def __init__(self, job, unit, reporter, **kwargs):
        kwargs.setdefault("name", "SplitByKey")
        super().__init__(**kwargs)
        self._job = job
        self._unit = unit
        self._reporter = reporter
        self._writers = {}
        self._pending = {}
        self._frame_rows = frame_rows(job.partitions)
        self._next = 0
        self.rows = [0] * job.partitions

    async def _do(self, batch):
        n = batch.n
        parts = partition_numbers(batch.keys, self._job.partitions)
        seq = np.arange(self._next, self._next + n, dtype=np.int64) | (self._unit << POSITION_BITS)
        self._next += n
        for partition in np.unique(parts).tolist():
            mask = parts == partition
            pending = self._pending.setdefault(partition, [])
            pending.append(select(batch, mask, seq[mask]))
            self.rows[partition] += pending[-1].n
            if sum(s.n for s in pending) >= self._frame_rows:
                self._write(partition)
        self._reporter.update(n)

    def _write(self, partition):
        selections = self._pending.pop(partition, [])
        writer = self._writer(partition) if selections else None
        for selection in merge(selections):
            writer.write(encode(selection))

    def _writer(self, partition):
        writer = self._writers.get(partition)
        if writer is None:
            path = self._job.piece_path(self._unit, partition)
            writer = self._writers[partition] = PieceWriter(path, self._job.storage_options)
        return writer

    def commit(self):
        """Writes what is pending, then makes every piece appear."""
        for partition in list(self._pending):
            self._write(partition)
        for writer in self._writers.values():
            writer.commit()

    def discard(self):
        for writer in self._writers.values():
            writer.discard()


def shuffle_unit(job, unit):
    """Task: splits the events of `job.units[unit]` into pieces, one per partition that gets any;
    returns the number of events sent to each partition."""
    reporter = RowReporter(job.topic, "shuffle", unit)
    split = SplitByKey(job, unit, reporter)
    try:
        build_flow([job.source_step(unit), split]).run().await_termination()
    except BaseException as ex:
        split.discard()
        ex.add_note(f"while reading {job.units[unit]}")
        raise
    split.commit()
    return split.rows
