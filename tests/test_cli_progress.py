"""Progress of long work: the CountRows pass-through step and the Progress bar."""

import asyncio
import io

import pandas as pd

from storey import AsyncEmitSource, DataframeSource, Reduce, SyncEmitSource, build_flow
from storey.cli.progress import CountRows, Progress, on_terminal
from storey.flow import Flow


class _Seen(Flow):
    """Records, for each batch it receives, whether it still held its bodies as columns only."""

    _takes_batches = True  # its _do takes EventBatches

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.columnar = []

    async def _do(self, batch):
        self.columnar.append(batch.columns is not None and batch._bodies is None)
        await self._emit(batch)


def test_counts_events_of_a_dataframe_and_keeps_them_columnar():
    df = pd.DataFrame({"k": ["a", "b"] * 5000, "v": range(10000)})
    progress = Progress("test", total=len(df), enabled=False)
    seen = _Seen()
    flow = build_flow([DataframeSource(df, key_field="k"), CountRows(progress), seen])
    flow.run().await_termination()
    assert progress.count == 10000
    assert seen.columnar and all(seen.columnar)


def test_passes_events_on_unchanged_sync_emit():
    progress = Progress("test", enabled=False)
    flow = build_flow([SyncEmitSource(), CountRows(progress), Reduce([], lambda acc, x: acc + [x])])
    controller = flow.run()
    for i in range(20):
        controller.emit({"i": i}, key=f"k{i % 2}")
    controller.terminate()
    assert controller.await_termination() == [{"i": i} for i in range(20)]
    assert progress.count == 20


def test_passes_events_on_unchanged_async_emit():
    progress = Progress("test", enabled=False)

    async def run():
        flow = build_flow(
            [AsyncEmitSource(), CountRows(progress), Reduce([], lambda acc, x: acc + [x], full_event=True)]
        )
        controller = flow.run()
        for i in range(5):
            await controller.emit({"i": i}, key="k")
        await controller.terminate()
        return await controller.await_termination()

    events = asyncio.run(run())
    assert [e.body for e in events] == [{"i": i} for i in range(5)]
    assert [e.key for e in events] == ["k"] * 5
    assert progress.count == 5


def test_disabled_progress_writes_nothing(capsys):
    with Progress("quiet", total=10, enabled=False) as progress:
        progress.update(10)
    assert capsys.readouterr() == ("", "")
    assert progress.count == 10


def test_enabled_progress_shows_rows_of_total_on_stderr(capsys):
    with Progress("work", total=1000, enabled=True) as progress:
        progress.update(400)
        progress.update(600)
    err = capsys.readouterr().err
    assert "work" in err and "1.00k/1.00k" in err and "rows/s" in err


def test_estimated_total_grows_when_exceeded(capsys):
    with Progress("csv", total=100, enabled=True) as progress:
        progress.update(150)
    assert "150/150" in capsys.readouterr().err


def test_estimated_total_shrinks_to_the_count_at_the_end(capsys):
    with Progress("csv", total=200, enabled=True) as progress:
        progress.update(150)
    assert "150/150" in capsys.readouterr().err.rsplit("\r", 1)[-1]


def test_not_a_terminal():
    assert not on_terminal(io.StringIO())

    class Closed:
        def isatty(self):
            raise ValueError("I/O operation on closed file")

    assert not on_terminal(Closed())
