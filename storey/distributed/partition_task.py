"""The second phase: a task per partition runs the backfill flow on the partition's events.

`PieceSource` replays the partition's pieces in sequence order: the pieces of the files in
their order in SOURCE, each piece's frames in the order they were written. Every key's events
therefore reach the flow in their single-process arrival order, with the same values, types and
times (the frames hold what the source made); the reader checks that sequence numbers only
grow. The flow is the single-process one on fewer keys:

    PieceSource -> CountRows -> steps(table) (AggregateByKey, ...) -> ParquetTarget(OUT/part-N.parquet)

and the target writes its single file under a hidden temporary name, renamed to
`part-N.parquet` only when the flow has ended well. A rerun of the task (its worker died)
writes the same file again, replacing nothing but a complete file of the same content.
"""

from dataclasses import dataclass

import numpy as np

from storey.aggregations import AggregateByKey
from storey.cli.progress import CountRows
from storey.core.storage import get_filesystem
from storey.flow import build_flow
from storey.sources.file_sources.replay import ReplaySource
from storey.targets import ParquetTarget

from .event_frames import decode
from .piece_files import read_frames
from .row_progress import RowReporter


class PieceSource(ReplaySource):
    """The events the shuffle sent to partition `partition` from the files `units` (indexes
    into the job's units, ascending), in sequence order."""

    def __init__(self, job, partition, units, **kwargs):
        kwargs.setdefault("name", "PieceSource")
        super().__init__(**kwargs)
        self._job = job
        self._partition = partition
        self._units = list(units)

    def _batches(self, ids):
        last = -1
        for unit in self._units:
            path = self._job.piece_path(unit, self._partition)
            for frame in read_frames(path, self._job.storage_options):
                batch, seq = decode(frame, ids)
                if seq[0] <= last or (len(seq) > 1 and not (np.diff(seq) > 0).all()):
                    raise RuntimeError(f"{self.name}: the events of {path} are out of sequence")
                last = int(seq[-1])
                yield batch


@dataclass(frozen=True)
class PartitionOutput:
    """What one partition's task wrote: its rows, and its output file (None: no rows)."""

    partition: int
    rows: int
    path: str | None


def aggregate_steps(aggregates, table):
    """The steps of a backfill of `aggregates` (FieldAggregators) into `table`."""
    return [AggregateByKey(aggregates, table)]


def backfill_partition(job, partition, units):
    """Task: runs the partition's flow over its pieces; returns its `PartitionOutput`."""
    reporter = RowReporter(job.topic, "backfill", partition)
    table = job.partition_table()
    path = job.output_path(partition)
    steps = [
        PieceSource(job, partition, units),
        CountRows(reporter),
        *job.steps(table),
        ParquetTarget(path, storage_options=job.storage_options),
    ]
    try:
        build_flow(steps).run().await_termination()
    except BaseException as ex:
        ex.add_note(f"while aggregating partition {partition} of {job.partitions}")
        raise
    written = path if _exists(path, job.storage_options) else None
    return PartitionOutput(partition, reporter.rows, written)


def _exists(path, storage_options):
    fs, inner = get_filesystem(path, storage_options)
    return fs.exists(inner)
