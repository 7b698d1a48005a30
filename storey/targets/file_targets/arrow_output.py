"""Output columns as arrow arrays, typed as the reference's files are.

The reference builds a pandas DataFrame from the event bodies and writes it with pyarrow. Its
files therefore hold: int64 for ints (double once a null appears), double for floats, null for a
column with no value, microsecond timestamps for naive datetimes and nanosecond timestamps for
aware ones. `finalize` applies those rules to each column of a chunk group about to be written;
explicitly typed columns keep their type.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...core.arrow_arrays import from_numpy
from ...core.lazy import LazyModule
from ...core.times import TIME_UNITS
from .values import (
    arrow_tz,
    column_sample,
    is_plain_value,
    key_values,
    source_arrow_column,
    time_info,
    time_ns,
)

pd = LazyModule("pandas")


def spec_array(batch, spec):
    """The arrow array of one output column (a `ColumnSpec`) of a batch with column bodies."""
    if spec.meta == "key":
        keys = key_values(batch)
        arr = keys if isinstance(keys, pa.Array) else _from_values(keys)
    elif spec.meta == "time":
        arr = time_array(batch)
    elif spec.meta == "id":
        arr = pa.array(batch.ids, pa.string())
    else:
        arr = column_array(batch.columns, spec.field)
    return arr if spec.type_name is None else cast_to(arr, spec)


def row_values(batch, rows, specs, positions=None):
    """The values of each output column, as lists, from row bodies: dict bodies by field; list
    bodies give their elements, in order, to the columns that are not metadata (or, with
    `positions`, to the columns it maps to list positions by name)."""
    keys = batch.keys if any(s.meta == "key" for s in specs) else None
    ids = batch.ids if any(s.meta == "id" for s in specs) else None
    if all(type(b) is dict for b in rows):
        # event times straight from their int64 form: no time objects are built
        meta = {"key": lambda: list(keys), "time": lambda: time_array(batch), "id": lambda: list(ids)}
        return [meta[s.meta]() if s.meta is not None else [b.get(s.field) for b in rows] for s in specs]
    if positions is None:
        positions = list_positions(specs)
    times = batch.time_values if any(s.meta == "time" for s in specs) else None
    values = [[] for _ in specs]
    for i, body in enumerate(rows):
        for j, spec in enumerate(specs):
            if spec.meta == "key":
                values[j].append(keys[i])
            elif spec.meta == "time":
                values[j].append(times[i])
            elif spec.meta == "id":
                values[j].append(ids[i])
            elif isinstance(body, dict):
                values[j].append(body.get(spec.field))
            else:
                values[j].append(body[positions[spec.name]])
    return values


def list_positions(specs):
    """Where each column's value is in a list body: the list holds the values of the columns that
    are not metadata, in order."""
    fields = [s.name for s in specs if s.meta is None]
    return {name: i for i, name in enumerate(fields)}


def values_array(values, spec):
    """The arrow array of one output column from its values (a list, or already an array)."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values if spec.type_name is None else cast_to(values, spec)
    if spec.type_name == "datetime":
        return _to_naive_utc(values)
    arr = _from_values(values)
    return arr if spec.type_name is None else cast_to(arr, spec)


def _from_values(values):
    if isinstance(values, np.ndarray) and values.dtype.kind != "O":
        return from_numpy(values)
    return pa.array(values, from_pandas=True)


def time_array(batch):
    """Event times: naive ones as wall-clock timestamps, aware ones in their own zone."""
    tz, _ = time_info(batch)
    ns = time_ns(batch)
    if tz is None:
        return from_numpy(ns, pa.timestamp("ns"))
    return from_numpy(ns, pa.timestamp("ns", tz=arrow_tz(tz)))


def column_array(cols, name):
    """A body field held as a NumPy column, as an arrow array (absent entries are null)."""
    if name not in cols:
        return pa.nulls(cols.n)
    as_read = source_arrow_column(cols, name)
    if as_read is not None:
        return as_read
    arr = cols.data[name]
    absent = cols.absent_rows(name)
    kind = arr.dtype.kind
    convert = cols.converters.get(name)
    if convert is not None and not is_plain_value(column_sample(cols, name), kind):
        return _from_values(cols.row_values(name))
    if kind == "f":
        mask = np.isnan(arr)
        if absent is not None:
            mask |= absent
        return from_numpy(arr, mask=mask)
    if kind in "iub":
        return from_numpy(arr, mask=absent)
    if kind == "M":
        # in the column's own unit: a time nanoseconds cannot hold stays what it is
        unit, _ = np.datetime_data(arr.dtype)
        if unit not in TIME_UNITS:
            arr = arr.astype("datetime64[us]")
            unit = "us"
        mask = np.isnat(arr)
        if absent is not None:
            mask |= absent
        sample = column_sample(cols, name)
        tzinfo = getattr(sample, "tzinfo", None)
        typ = pa.timestamp(unit, tz=None if tzinfo is None else arrow_tz(tzinfo))
        return from_numpy(arr.view(np.int64), typ, mask=mask)
    if kind in "OU":
        return pa.array(arr, mask=absent, from_pandas=True)
    return _from_values(cols.row_values(name))


def _to_naive_utc(values):
    """A 'datetime' typed column: ISO strings and datetimes as naive UTC nanosecond timestamps."""
    try:
        index = pd.to_datetime(pd.Series(values, dtype=object), utc=True)
    except (ValueError, TypeError):
        index = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="mixed")
    naive = index.dt.tz_localize(None).astype("datetime64[ns]")
    return pa.array(naive.to_numpy(), pa.timestamp("ns"), from_pandas=True)


def cast_to(arr, spec):
    """An array converted to its column's declared type."""
    typ = spec.arrow_type
    if arr.type == typ:
        return arr
    if pa.types.is_timestamp(typ):
        if pa.types.is_timestamp(arr.type):
            if arr.type.tz is not None:
                arr = pc.cast(arr, pa.timestamp(arr.type.unit, tz="UTC"))
                arr = pa.array(arr.cast(pa.int64()).to_numpy(zero_copy_only=False), pa.int64()).cast(
                    pa.timestamp(arr.type.unit)
                )
            return pc.cast(arr, typ)
        return _to_naive_utc(arr.to_pylist())
    try:
        return pc.cast(arr, typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as ex:
        raise TypeError(
            f"column {spec.name!r}: cannot convert {arr.type} values to {spec.type_name}: {ex}"
        ) from ex


def same_time_types(tables):
    """Tables of the same columns, each timestamp column typed as `same_time_chunks` types it."""
    out = list(tables)
    for i in range(tables[0].num_columns):
        columns = [table.column(i) for table in out]
        chunks = same_time_chunks(columns)
        if chunks is not columns:
            out = [t.set_column(i, t.field(i).name, chunk) for t, chunk in zip(out, chunks, strict=True)]
    return out


def same_time_chunks(chunks):
    """Chunks of one column (arrays) whose timestamps are typed alike: with the zone of the first
    timestamp chunk and the finest unit of them all. Arrow holds instants in UTC, and naive times
    are UTC, so only the type changes, never an instant: the same events give the same column
    whichever batches brought them."""
    times = [chunk.type for chunk in chunks if pa.types.is_timestamp(chunk.type)]
    if len(set(times)) < 2:
        return chunks
    tz = times[0].tz
    unit = min((t.unit for t in times), key=_UNITS.index)
    wanted = pa.timestamp(unit, tz=tz)
    out = []
    for chunk in chunks:
        typ = chunk.type
        if pa.types.is_timestamp(typ) and typ != wanted:
            chunk = pc.cast(chunk, pa.int64()).cast(pa.timestamp(typ.unit, tz=tz)).cast(wanted)
        out.append(chunk)
    return out


# timestamp units, finest first
# finest first
_UNITS = TIME_UNITS[::-1]


def finalize(arr):
    """An untyped column as the reference's files hold it (see the module docstring). A chunked
    column stays chunked (a Parquet writer takes the chunks as they are)."""
    typ = arr.type
    if isinstance(arr, pa.ChunkedArray) and (arr.num_chunks == 1 or pa.types.is_dictionary(typ)):
        arr = arr.combine_chunks()
    if arr.null_count == len(arr) and len(arr) and not pa.types.is_floating(typ):
        return pa.nulls(len(arr))
    if pa.types.is_integer(typ):
        if arr.null_count:
            return pc.cast(arr, pa.float64())
        if typ == pa.uint64() and len(arr) and pc.max(arr).as_py() > np.iinfo(np.int64).max:
            return arr
        return pc.cast(arr, pa.int64()) if typ != pa.int64() else arr
    if pa.types.is_floating(typ):
        return pc.cast(arr, pa.float64()) if typ != pa.float64() else arr
    if pa.types.is_timestamp(typ):
        if typ.tz is None:
            return arr if typ.unit == "us" else arr.cast(pa.timestamp("us"), safe=False)
        return arr if typ.unit == "ns" else arr.cast(pa.timestamp("ns", tz=typ.tz))
    if pa.types.is_large_string(typ):
        return pc.cast(arr, pa.string())
    if pa.types.is_dictionary(typ):
        return finalize(arr.dictionary_decode())
    return arr
