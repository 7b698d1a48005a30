"""The shuffle's unit of data: some events of one batch a file source made, as bytes.

A frame holds exactly what the source handed the flow for those events: the body columns as
read (the arrow record batch with its conversion plans, so that a target still writes each
column as it was read), the keys (an arrow array while they are one text column), the event
times as the source gave them, and each event's sequence number. Decoded in another process it
is the same batch, less the events of other partitions: a flow cannot tell it from the source's
own. Event ids are not carried: a source without an id field generates them, and so does the
frame's reader.

Frames are pickled (cloudpickle: a column's conversion plan may be a lambda); arrow and NumPy
buffers go in as they are.
"""

import pickle

import numpy as np
import pyarrow as pa

from storey.core.batch import EventBatch
from storey.sources.file_sources.arrow_input import filter_columns
from storey.sources.file_sources.event_fields import LazyKeys

# changed whenever the frame layout changes: a frame of another layout is refused
_LAYOUT = 1


def encode(batch, mask, seq):
    """The frame of the events of `batch` where the boolean array `mask` is True; `seq` holds
    their sequence numbers (int64)."""
    columns = batch.stored_columns()
    if columns is None:
        raise TypeError("a shuffled batch must hold its bodies as the columns a file source reads")
    selected = filter_columns(columns, mask)
    keys, keys_arrow = _selected_keys(batch.keys, mask)
    times = batch._times
    time_values = batch._time_values
    if times is not None:
        times = times[mask]
    if time_values is not None:
        time_values = [time_values[i] for i in np.flatnonzero(mask).tolist()]
    record = (_LAYOUT, seq, selected, keys, keys_arrow, times, time_values, batch._time_style)
    import cloudpickle  # comes with Dask (the storey[dask] extra)

    return cloudpickle.dumps(record, protocol=5)


def decode(frame, ids):
    """(the EventBatch, its sequence numbers) of a frame; `ids` is the reading flow's IdSequence."""
    layout, seq, columns, keys, keys_arrow, times, time_values, time_style = pickle.loads(frame)
    if layout != _LAYOUT:
        raise ValueError(f"a shuffle frame of layout {layout}, not {_LAYOUT}: written by another storey")
    n = len(seq)
    if keys_arrow is not None:
        keys = LazyKeys(n, keys_arrow.to_pylist, lambda: keys_arrow)
    batch = EventBatch(
        n,
        columns=columns,
        keys=keys,
        times=times,
        time_values=time_values,
        time_style=time_style,
        ids=ids.reserve(n),
    )
    return batch, seq


def _selected_keys(keys, mask):
    """(keys as a list, None) or (None, keys as an arrow string array) of the selected events."""
    as_arrow = getattr(keys, "arrow", None)
    arrow = as_arrow() if as_arrow is not None else None
    if arrow is not None:
        return None, arrow.filter(pa.array(mask))
    return [keys[i] for i in np.flatnonzero(mask).tolist()], None
