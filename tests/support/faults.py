"""Faults injected into flows that run on Dask workers (importable there: tests.support.faults)."""

import glob
import os
import signal
import time

from storey.aggregations import AggregateByKey
from storey.flow import Flow


class DieOnce(Flow):
    """Passes batches on; once it has seen `after` events, flushes `table` (as its periodic flush
    would), waits until a partition's output file is being written in `out` (a hidden temporary
    file), and kills its own process (SIGKILL, as an out-of-memory killer or a lost machine
    would), unless the file `marker` exists: the first step to get there creates it, so that one
    process dies, once."""

    _takes_batches = True

    def __init__(self, marker, after, table, out, **kwargs):
        super().__init__(**kwargs)
        self._marker = marker
        self._after = after
        self._table = table
        self._out = out
        self._seen = 0

    async def _do(self, batch):
        self._seen += batch.n
        if self._seen >= self._after:
            try:
                os.close(os.open(self._marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                await self._table._flush(wait=True)
                deadline = time.monotonic() + 10
                while not glob.glob(os.path.join(self._out, ".part-*.tmp")) and time.monotonic() < deadline:
                    time.sleep(0.05)
                os.kill(os.getpid(), signal.SIGKILL)
        await self._emit(batch)


def aggregate_then_die_once(aggregates, marker, after, out, table):
    """Steps for `storey.distributed.backfill(steps=partial(aggregate_then_die_once, ...))`."""
    return [AggregateByKey(aggregates, table), DieOnce(marker, after, table, out)]
