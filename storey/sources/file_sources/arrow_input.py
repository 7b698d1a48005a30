"""Arrow record batches as event bodies: `Columns` whose NumPy arrays are made on first use.

Each arrow column is converted as pandas converts it when the reference reads a file into a
DataFrame: ints with nulls become floats with NaN, strings become objects with None, timestamps
become nanosecond instants shown as pandas Timestamps, dates become `datetime.date`s, and so on
(see `column_plan`). Nothing is converted until a step asks for the column: a flow that only
writes the batch back can use `ArrowColumnData.record_batch` as it is.
"""

from collections.abc import Mapping
from datetime import UTC

import numpy as np
import pyarrow as pa

from ...core.arrow_arrays import from_numpy, to_numpy
from ...core.columns import Columns
from ...core.lazy import LazyModule
from ...core.times import TimeOutOfRange, datetime64_ns
from ...core.value_kinds import (
    PLAIN,
    DateKind,
    NullableKind,
    ObjectKind,
    PlainKind,
    TimedeltaKind,
    TimestampKind,
    object_array,
)

pd = LazyModule("pandas")
NAT = np.iinfo(np.int64).min


class ArrowColumnData(Mapping):
    """The columns of a pyarrow RecordBatch as NumPy arrays, each converted on first access.

    `record_batch` holds exactly these columns, in this order, so a step that writes arrow (a
    Parquet or CSV target) can use it without converting anything, as long as the `Columns`
    holding this mapping is the one the source made (any change to the bodies makes new data).
    `where` (a file name) places a value that cannot be converted.
    """

    __slots__ = ("record_batch", "_names", "_index", "_plans", "_cache", "overridden", "where")

    def __init__(self, record_batch, plans, cache=None, overridden=None, where=None):
        self.record_batch = record_batch
        self.where = where
        self._names = record_batch.schema.names
        self._index = {name: i for i, name in enumerate(self._names)}
        self._plans = plans
        self._cache = {} if cache is None else cache
        # the columns whose values were given (in `cache`), not made from the arrow array alone
        self.overridden = frozenset(self._cache) if overridden is None else overridden

    def __getitem__(self, name):
        values = self._cache.get(name)
        if values is None:
            column = self.record_batch.column(self._index[name])
            try:
                values = self._plans[name].to_numpy(column)
            except TimeOutOfRange as ex:
                if self.where is None:
                    raise
                message = f"{self.where}, field {name!r}: {ex.detail}"
                raise TimeOutOfRange(message, ex.index, ex.detail) from None
            except (pa.ArrowException, UnicodeDecodeError) as ex:
                # values a file holds but Python cannot (text that is not UTF-8)
                if self.where is None:
                    raise
                raise ValueError(f"{self.where}, field {name!r}: cannot read its values: {ex}") from ex
            self._cache[name] = values
        return values

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)

    def __contains__(self, name):
        return name in self._index

    def arrow_column(self, name):
        """The arrow array a field came from (as read: a target can write it unchanged)."""
        return self.record_batch.column(self._index[name])

    def none_mask(self, name):
        """Where the row value of field `name` is None, read from arrow's validity bitmap; None
        when that cannot tell (the caller then looks at the values)."""
        if name in self._cache:
            return None
        nulls_are_none = self._plans[name].nulls_are_none
        if nulls_are_none is None:
            return None
        column = self.arrow_column(name)
        if not nulls_are_none or not column.null_count:
            return np.zeros(len(column), dtype=bool)
        return to_numpy(column.is_null())

    def filter(self, mask):
        """The rows where the boolean array `mask` is True."""
        cache = {name: values[mask] for name, values in self._cache.items()}
        return ArrowColumnData(
            self.record_batch.filter(from_numpy(mask)), self._plans, cache, self.overridden, self.where
        )


class ColumnPlan:
    """How one arrow column becomes a NumPy array (`to_numpy`) and row values (`kind`);
    `nulls_are_none` says whether a null's row value is None (True), never None (False: NaN,
    NaT, NA), or unknown (None)."""

    __slots__ = ("to_numpy", "kind", "nulls_are_none")

    def __init__(self, to_numpy, kind, nulls_are_none=None):
        self.to_numpy = to_numpy
        self.kind = kind
        self.nulls_are_none = nulls_are_none


def columns_from_arrow(record_batch, plans, where=None):
    """`Columns` over a record batch whose column names are unique, with a plan for each."""
    data = ArrowColumnData(record_batch, plans, where=where)
    converters = {name: plans[name].kind for name in data if plans[name].kind is not PLAIN}
    return Columns(data, record_batch.num_rows, converters=converters)


def filter_columns(columns, mask):
    """The rows of `columns` where `mask` is True, keeping arrow data as arrow data."""
    filter_data = getattr(columns.data, "filter", None)
    if filter_data is not None:
        return Columns(
            filter_data(mask),
            int(mask.sum()),
            converters=columns.converters,
            list_rows=columns.list_rows,
        )
    return columns.take(mask)


# ---- per-type plans


def _numpy(arr):
    return to_numpy(arr)


def _ints_as_floats(arr):
    return to_numpy(arr.cast(pa.float64()))


def _ints(arr):
    if arr.null_count:
        return _ints_as_floats(arr)
    return to_numpy(arr)


def _objects(arr):
    return object_array(arr.to_pylist())


def _nones(arr):
    return np.full(len(arr), None, dtype=object)


def _ns_instants(arr):
    typ = arr.type
    if typ.unit != "ns":
        try:
            arr = arr.cast(pa.timestamp("ns", tz=typ.tz))
        except pa.ArrowInvalid:
            # raises TimeOutOfRange for the first value nanoseconds cannot hold
            datetime64_ns(arr.cast(pa.timestamp(typ.unit)).to_numpy(zero_copy_only=False))
            raise
    ints = arr.view(pa.int64())
    if arr.null_count:
        ints = ints.fill_null(NAT)
    return to_numpy(ints).view("datetime64[ns]")


def _durations(arr):
    if arr.type.unit != "ns":
        arr = arr.cast(pa.duration("ns"))
    return arr.to_numpy(zero_copy_only=False).astype("timedelta64[ns]")


def _dates(arr):
    if pa.types.is_date64(arr.type):
        arr = arr.cast(pa.date32())
    return arr.to_numpy(zero_copy_only=False).astype("datetime64[D]")


def _dictionary_values(value_plan):
    # a category column: missing values are NaN, whatever the categories' type
    def convert(arr):
        decoded = arr.dictionary_decode()
        values = value_plan.to_numpy(decoded)
        if decoded.null_count:
            values = values.astype(object)
            values[_null_mask(decoded)] = np.nan
        return values

    return convert


def _null_mask(arr):
    return arr.is_null().to_numpy(zero_copy_only=False)


def arrow_tz(tz_name):
    """The time zone object pandas uses for an arrow time zone name (UTC's without pandas)."""
    if tz_name in _UTC_NAMES:
        return UTC
    return pd.DatetimeTZDtype("ns", tz_name).tz


_UTC_NAMES = ("UTC", "utc", "+00:00")


def column_plan(typ, int_nulls=True, pandas_type=None):
    """The plan for an arrow column of type `typ`.

    `int_nulls`: whether an integer column has nulls anywhere in what is read (pandas then turns
    the whole column into floats), or False when it has none, or None to decide batch by batch.
    `pandas_type`: the pandas dtype the file's pandas metadata records ("Int64", "boolean", ...).
    """
    if pandas_type is not None:
        plan = _nullable_plan(typ, pandas_type)
        if plan is not None:
            return plan
    if pa.types.is_dictionary(typ):
        value_plan = column_plan(typ.value_type, int_nulls=True)
        return ColumnPlan(_dictionary_values(value_plan), PlainKind(typ), False)
    if pa.types.is_integer(typ):
        if int_nulls is None:
            return ColumnPlan(_ints, PLAIN, False)
        return ColumnPlan(_ints_as_floats if int_nulls else (lambda arr: arr.to_numpy()), PLAIN, False)
    if pa.types.is_floating(typ):
        return ColumnPlan(_numpy, PLAIN, False)
    if pa.types.is_boolean(typ):
        return ColumnPlan(_numpy, PLAIN, True)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_binary(typ):
        return ColumnPlan(_numpy, PLAIN, True)
    if pa.types.is_large_binary(typ) or pa.types.is_fixed_size_binary(typ):
        return ColumnPlan(_numpy, PLAIN, True)
    if pa.types.is_timestamp(typ):
        tz = None if typ.tz is None else arrow_tz(typ.tz)
        return ColumnPlan(_ns_instants, TimestampKind(tz, typ), False)
    if pa.types.is_date(typ):
        return ColumnPlan(_dates, DateKind(typ), True)
    if pa.types.is_duration(typ):
        return ColumnPlan(_durations, TimedeltaKind(typ), False)
    if pa.types.is_null(typ):
        return ColumnPlan(_nones, PlainKind(typ), True)
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        return ColumnPlan(_numpy, ObjectKind(typ), True)
    return ColumnPlan(_objects, ObjectKind(typ), True)


_NULLABLE_INTS = {f"{p}Int{b}": getattr(np, f"{p.lower()}int{b}") for p in ("", "U") for b in (8, 16, 32, 64)}


def _nullable_plan(typ, pandas_type):
    if pandas_type in _NULLABLE_INTS and pa.types.is_integer(typ):
        return ColumnPlan(_ints_as_floats, NullableKind(_NULLABLE_INTS[pandas_type], typ), False)
    if pandas_type == "boolean" and pa.types.is_boolean(typ):
        return ColumnPlan(_objects, NullableKind(np.bool_, typ), False)
    if pandas_type == "string" and (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        return ColumnPlan(_numpy, NullableKind(None, typ), False)
    return None
