"""The shuffle's unit of data: events a file source made, selected for one partition, as bytes.

A `Selection` holds exactly what the source handed the flow for some events of one batch: the
body columns as read (the arrow record batch with its conversion plans, so that a target still
writes each column as it was read), the keys (an arrow array while they are one text column),
the event times as the source gave them, and each event's sequence number. Consecutive
selections of one file merge into one (`merge`) when they share the file's conversion plans (a
Parquet file's batches do), so that a partition's flow gets batches as big as the source's
rather than a partition's share of them (each batch costs a flow some fixed work). A frame
(`encode`) is a selection pickled (cloudpickle: a plan may be a lambda; arrow and NumPy buffers
go in as they are). Decoded in another process it is the source's batch, less the events of
other partitions: a flow cannot tell it from the source's own. Event ids are not carried: a
source without an id field generates them, and so does the frame's reader.
"""

import pickle
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from storey.core.batch import EventBatch
from storey.core.columns import Columns
from storey.sources.file_sources.arrow_input import ArrowColumnData, filter_columns
from storey.sources.file_sources.event_fields import LazyKeys

# changed whenever the frame layout changes: a frame of another layout is refused
_LAYOUT = 2


@dataclass
class Selection:
    """Some events of a file source's batch: `columns` (their bodies), their keys (`keys`, a
    list, or `keys_arrow`), event times (`times`, int64 ns, and/or `time_values`, in
    `time_style`) and sequence numbers (`seq`)."""

    columns: Columns
    keys: list | None
    keys_arrow: pa.Array | None
    times: np.ndarray | None
    time_values: list | None
    time_style: object
    seq: np.ndarray

    @property
    def n(self):
        return len(self.seq)


def select(batch, mask, seq):
    """The events of `batch` where the boolean array `mask` is True; `seq`: their sequence
    numbers."""
    columns = batch.stored_columns()
    if columns is None:
        raise TypeError("a shuffled batch must hold its bodies as the columns a file source reads")
    keys, keys_arrow = _selected_keys(batch.keys, mask)
    times = batch._times
    time_values = batch._time_values
    return Selection(
        filter_columns(columns, mask),
        keys,
        keys_arrow,
        None if times is None else times[mask],
        None if time_values is None else [time_values[i] for i in np.flatnonzero(mask).tolist()],
        batch._time_style,
        seq,
    )


def merge(selections):
    """The selections (consecutive ones of one source) with each run of mergeable ones merged."""
    out = []
    run = []
    for selection in selections:
        if run and not _mergeable(run[0], selection):
            out.append(_merged(run))
            run = []
        run.append(selection)
    if run:
        out.append(_merged(run))
    return out


def encode(selection):
    """The frame (bytes) of a selection."""
    import cloudpickle  # comes with Dask (the storey[dask] extra)

    return cloudpickle.dumps((_LAYOUT, selection), protocol=5)


def decode(frame, ids):
    """(the EventBatch, its sequence numbers) of a frame; `ids` is the reading flow's IdSequence."""
    layout, selection = pickle.loads(frame)
    if layout != _LAYOUT:
        raise ValueError(f"a shuffle frame of layout {layout}, not {_LAYOUT}: written by another storey")
    n = selection.n
    keys = selection.keys
    keys_arrow = selection.keys_arrow
    if keys_arrow is not None:
        keys = LazyKeys(n, keys_arrow.to_pylist, lambda: keys_arrow)
    batch = EventBatch(
        n,
        columns=selection.columns,
        keys=keys,
        times=selection.times,
        time_values=selection.time_values,
        time_style=selection.time_style,
        ids=ids.reserve(n),
    )
    return batch, selection.seq


def _selected_keys(keys, mask):
    """(keys as a list, None) or (None, keys as an arrow string array) of the selected events."""
    as_arrow = getattr(keys, "arrow", None)
    arrow = as_arrow() if as_arrow is not None else None
    if arrow is not None:
        return None, arrow.filter(pa.array(mask))
    return [keys[i] for i in np.flatnonzero(mask).tolist()], None


def _mergeable(a, b):
    """Whether two selections' events can be one batch: the same conversion plans (the source's
    own objects), keys and times of the same forms."""
    da, db = a.columns.data, b.columns.data
    return (
        isinstance(da, ArrowColumnData)
        and isinstance(db, ArrowColumnData)
        and da._plans is db._plans
        and da.overridden == db.overridden
        and da.record_batch.schema.equals(db.record_batch.schema)
        and a.columns.converters == b.columns.converters
        and a.columns.list_rows == b.columns.list_rows
        and not a.columns.absent
        and not b.columns.absent
        and (a.keys_arrow is None) == (b.keys_arrow is None)
        and (a.keys_arrow is None or a.keys_arrow.type == b.keys_arrow.type)
        and (a.times is None) == (b.times is None)
        and (a.time_values is None) == (b.time_values is None)
        and a.time_style is b.time_style
    )


def _merged(run):
    if len(run) == 1:
        return run[0]
    first = run[0]
    data = [s.columns.data for s in run]
    # values given rather than converted (`overridden`) travel along; the others are converted
    # again from the arrow arrays when a step asks for them
    cache = {name: np.concatenate([d[name] for d in data]) for name in first.columns.data.overridden}
    record_batch = pa.concat_batches([d.record_batch for d in data])
    columns_data = ArrowColumnData(
        record_batch, first.columns.data._plans, cache, first.columns.data.overridden
    )
    n = sum(s.n for s in run)
    columns = Columns(columns_data, n, converters=first.columns.converters, list_rows=first.columns.list_rows)
    return Selection(
        columns,
        None if first.keys is None else [k for s in run for k in s.keys],
        None if first.keys_arrow is None else pa.concat_arrays([s.keys_arrow for s in run]),
        None if first.times is None else np.concatenate([s.times for s in run]),
        None if first.time_values is None else [t for s in run for t in s.time_values],
        first.time_style,
        np.concatenate([s.seq for s in run]),
    )
