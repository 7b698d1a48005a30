"""Running flows that start at a replay source (DataframeSource, ParquetSource, CSVSource).

`run_flow(source, *steps, mode=...)` runs `source -> steps -> capture` and returns the captured
events and the termination result. Mode 'inline' leaves the flow inline (no step can suspend);
'loop' adds a step that may suspend, so every batch runs on the flow's event loop.
"""

import math

import numpy as np
import pandas as pd

from storey import Flow, Map, build_flow
from tests.support.conformance import decode, encode_event

MODES = ["inline", "loop"]


class Suspending(Flow):
    """Passes batches on; marked as a step that may await, so the flow runs on its loop."""

    _may_suspend = True


class BatchLog(Flow):
    """Records, for each batch that reaches it, its size and whether its bodies are still columns
    nobody turned into rows; passes the batch on."""

    _takes_batches = True  # its _do takes EventBatches

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sizes = []
        self.columnar = []
        self.times = []

    async def _do(self, batch):
        self.sizes.append(batch.n)
        self.columnar.append(batch.columns is not None and batch._bodies is None)
        self.times.append(np.asarray(batch.times).copy())
        await self._emit(batch)


def run_flow(source, *steps, mode="inline"):
    """(captured Events, termination result) of `source -> steps -> capture`."""
    events = []

    def capture(event):
        events.append(event)
        return event

    chain = [source]
    if mode == "loop":
        chain.append(Suspending())
    chain.extend(steps)
    chain.append(Map(capture, full_event=True))
    result = build_flow(chain).run().await_termination()
    return events, result


def encoded(events, id=False, time=True):
    return [encode_event(e, id=id, time=time) for e in events]


def _cell(value):
    if value == "<NaN>":
        return math.nan
    return decode(value)


def frame(encoded_frame):
    """The DataFrame a case's inputs hold in the '<DataFrame>' encoding."""
    spec = encoded_frame["<DataFrame>"]
    columns = {}
    for j, (name, dtype) in enumerate(zip(spec["columns"], spec["dtypes"], strict=True)):
        values = [_cell(row[j]) for row in spec["rows"]]
        if dtype == "datetime64[UTC]":
            columns[name] = pd.to_datetime(pd.Series(values, dtype=object), utc=True)
        elif dtype == "datetime64":
            columns[name] = pd.to_datetime(pd.Series(values, dtype=object))
        else:
            columns[name] = pd.Series(values, dtype=dtype)
    names = spec["index_names"]
    if len(names) > 1:
        index = pd.MultiIndex.from_tuples([tuple(v) for v in spec["index"]], names=names)
    elif names[0] is None and spec["index"] == list(range(len(spec["index"]))):
        index = pd.RangeIndex(len(spec["index"]))
    else:
        index = pd.Index(spec["index"], name=names[0])
    df = pd.DataFrame(columns)
    df.index = index
    return df
