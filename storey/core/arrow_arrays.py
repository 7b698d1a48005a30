"""Arrow arrays as NumPy arrays and back, through their buffers.

pyarrow's own conversions (`Array.to_numpy`, `pa.array`) import pandas the first time they run,
0.3 s of a fresh process. These give the same arrays without it for the columns a backfill
holds (numbers, booleans, times and text without nulls; numbers, booleans and times with a null
mask), and leave everything else to pyarrow.
"""

import numpy as np
import pyarrow as pa

from .lazy import loaded

_TEXT = (pa.string(), pa.large_string())


def to_numpy(arr):
    """`arr.to_numpy(zero_copy_only=False)` of an arrow Array."""
    if arr.null_count:
        return arr.to_numpy(zero_copy_only=False)
    typ = arr.type
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        # a read-only view of arrow's memory, as pyarrow gives
        dtype = np.dtype(typ.to_pandas_dtype())
        start = arr.offset * dtype.itemsize
        return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=start)
    if typ == pa.bool_():
        bits = np.frombuffer(arr.buffers()[1], dtype=np.uint8)
        return np.unpackbits(bits, count=arr.offset + len(arr), bitorder="little")[arr.offset :].view(bool)
    if typ in _TEXT:
        if loaded("pandas") is not None:
            # pyarrow's is quicker, and loads nothing more now
            return arr.to_numpy(zero_copy_only=False)
        out = np.empty(len(arr), dtype=object)
        out[:] = arr.to_pylist()
        return out
    return arr.to_numpy(zero_copy_only=False)


def from_numpy(values, typ=None, mask=None):
    """`pa.array(values, typ, mask=mask)` of a 1-D NumPy array: rows where `mask` is True are
    null. `typ` is the values' own type or, for int64 values, a timestamp or duration type."""
    kind = values.dtype.kind
    if kind not in "iufb" or not values.dtype.isnative or values.ndim != 1:
        return pa.array(values, typ, mask=mask)
    own = pa.from_numpy_dtype(values.dtype)
    if typ is None:
        typ = own
    elif typ != own and not (own == pa.int64() and (pa.types.is_timestamp(typ) or pa.types.is_duration(typ))):
        return pa.array(values, typ, mask=mask)
    if kind == "b":
        data = np.packbits(values, bitorder="little")
    else:
        data = np.ascontiguousarray(values)
    validity = None
    if mask is not None and mask.any():
        validity = pa.py_buffer(np.packbits(~np.asarray(mask, dtype=bool), bitorder="little"))
    return pa.Array.from_buffers(typ, len(values), [validity, pa.py_buffer(data)])


def text_array(strings, typ=pa.string()):
    """`pa.array(strings, typ)` of a list of str, `typ` a string or large_string type."""
    encoded = [s.encode() for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64 if typ == pa.large_string() else np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    data = pa.py_buffer(b"".join(encoded))
    return pa.Array.from_buffers(typ, len(encoded), [None, pa.py_buffer(offsets), data])
