"""Backfills that outgrow one machine: the backfill split by key across a Dask cluster.

    from storey import FieldAggregator, SlidingWindows
    from storey.distributed import backfill

    result = backfill(
        "events/*.parquet", key="user_id", time="timestamp",
        aggregates=[FieldAggregator("amount", "amount", ["sum", "max"], SlidingWindows(["1h", "24h"]))],
        out="features/", client=4,   # 4 local worker processes; or a Client, or "tcp://scheduler:8786"
    )

A key's windows depend only on that key's events, in arrival order. The events are split by a hash
of the key into partitions, keeping each key's arrival order (file order, then row order), and
each partition runs the same flow as the single-process backfill: together they give exactly its
result. Dask (`dask.distributed`, the `storey[dask]` extra) schedules the tasks and runs a task
again when its worker dies. How it works is in `scale_out` (the phases), `shuffle_task` and
`partition_task` (the two kinds of task), `event_frames` (what the shuffle moves) and
`fresh_state` (a rerun task's table writes).

Dask is imported when a backfill runs, never by `import storey` or `import storey.distributed`.
"""

from .key_partitions import partition_of
from .scale_out import DistributedBackfillResult, backfill

__all__ = ["DistributedBackfillResult", "backfill", "partition_of"]
