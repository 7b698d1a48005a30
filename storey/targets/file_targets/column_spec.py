"""What a file target writes: output columns (with renaming, metadata and types) and partitions.

A column is given as `'field'`, `'out=field'`, `'$key'`, `'out=$time'` (metadata: `$key`,
`$time`, `$id`), or, where types are allowed, as a `(column, type)` tuple. Partition columns
are body fields, `$key`, time parts (`$date`, `$year` ... `$second`), or `(column, n)` tuples
that hash the value into n buckets.
"""

from dataclasses import dataclass

import pyarrow as pa

METADATA = {"$key": "key", "$time": "time", "$id": "id"}

# Types a (column, type) tuple may name, as arrow types.
COLUMN_TYPES = {
    "str": pa.string(),
    "int32": pa.int32(),
    "int": pa.int64(),
    "float32": pa.float32(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "datetime": pa.timestamp("ns"),
}

TIME_PARTS = ("$date", "$year", "$month", "$day", "$hour", "$minute", "$second")


@dataclass(frozen=True)
class ColumnSpec:
    """One output column: its `name`, where its values come from and, optionally, its type.

    `meta` is 'key', 'time' or 'id' for event metadata, else None and `field` names the body field.
    """

    name: str
    field: str | None = None
    meta: str | None = None
    type_name: str | None = None

    @property
    def arrow_type(self):
        return None if self.type_name is None else COLUMN_TYPES[self.type_name]


@dataclass(frozen=True)
class PartitionSpec:
    """One directory level: `name=value`, where the value is a field, the key or a time part;
    with `buckets`, the value is hashed (sha1) into that many buckets and the level is
    `hash<buckets>_<name>=<bucket>`."""

    name: str
    field: str | None = None
    meta: str | None = None
    time_part: str | None = None
    buckets: int | None = None


def _parse_one(step, param, item, allow_types):
    type_name = None
    if isinstance(item, tuple):
        if not allow_types:
            raise TypeError(f"{step}: {param} entries must be strings, got {item!r}")
        if len(item) != 2 or not isinstance(item[0], str) or not isinstance(item[1], str):
            raise ValueError(
                f"{step}: {param} entries must be a string or a (name, type) tuple, got {item!r}"
            )
        item, type_name = item
        if type_name not in COLUMN_TYPES:
            raise ValueError(
                f"{step}: {param} has unsupported type {type_name!r} for column {item!r}; "
                f"supported types: {', '.join(COLUMN_TYPES)}"
            )
    if not isinstance(item, str) or not item:
        raise TypeError(f"{step}: {param} entries must be non-empty strings, got {item!r}")
    name, sep, source = item.partition("=")
    if not sep:
        source = name
        name = METADATA.get(source, source)
    if not name or not source:
        raise ValueError(f"{step}: {param} entry {item!r} must look like 'name' or 'new_name=name'")
    if source.startswith("$"):
        if source not in METADATA:
            raise ValueError(
                f"{step}: {param} entry {item!r} names unknown metadata {source!r}; "
                f"known: {', '.join(METADATA)}"
            )
        return ColumnSpec(name, meta=METADATA[source], type_name=type_name)
    return ColumnSpec(name, field=source, type_name=type_name)


def _as_list(step, param, value):
    """A list parameter's value: one item (a string or tuple) becomes a list of it; None stays None."""
    if value is None or isinstance(value, list):
        return value
    if isinstance(value, str | tuple):
        return [value]
    raise TypeError(f"{step}: {param} must be a list, got {type(value).__name__}: {value!r}")


def parse_columns(step, param, value, allow_types=False):
    """The `ColumnSpec`s of a `columns`/`index_cols` parameter (None stays None)."""
    value = _as_list(step, param, value)
    if value is None:
        return None
    specs = [_parse_one(step, param, item, allow_types) for item in value]
    typed = [s.type_name is not None for s in specs]
    if any(typed) and not all(typed):
        raise ValueError(f"{step}: {param} must give a type for every column or for none, got {value!r}")
    return specs


def inferred_columns(names):
    """Columns inferred from the first event's fields (sorted, as the reference does)."""
    return [ColumnSpec(name, field=name) for name in names]


def merge_inferred(explicit, names, unique=False):
    """Explicit columns plus those inferred from data, sorted together by output name. With
    `unique`, an inferred column named like an explicit one is left out."""
    explicit = list(explicit or [])
    if unique:
        taken = {s.name for s in explicit}
        names = [n for n in names if n not in taken]
    return sorted(explicit + inferred_columns(names), key=lambda s: s.name)


def parse_partition_cols(step, value):
    """The `PartitionSpec`s of a `partition_cols` parameter (None stays None)."""
    value = _as_list(step, "partition_cols", value)
    if value is None:
        return None
    specs = []
    for item in value:
        buckets = None
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[0], str):
                raise ValueError(
                    f"{step}: partition_cols entries must be a name or (name, buckets), got {item!r}"
                )
            item, buckets = item
            if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets <= 0:
                raise ValueError(
                    f"{step}: partition_cols bucket count must be a positive int, got {buckets!r}"
                )
        if not isinstance(item, str) or not item:
            raise TypeError(f"{step}: partition_cols entries must be non-empty strings, got {item!r}")
        if item in TIME_PARTS:
            if buckets is not None:
                raise ValueError(f"{step}: partition_cols cannot hash the time part {item!r}")
            specs.append(PartitionSpec(item[1:], time_part=item[1:]))
        elif item.startswith("$"):
            if item not in METADATA:
                raise ValueError(
                    f"{step}: partition_cols names unknown metadata {item!r}; "
                    f"known: $key, {', '.join(TIME_PARTS)}"
                )
            specs.append(PartitionSpec(METADATA[item], meta=METADATA[item], buckets=buckets))
        else:
            specs.append(PartitionSpec(item, field=item, buckets=buckets))
    return specs


DEFAULT_PARTITIONS = [
    PartitionSpec("key", meta="key", buckets=256),
    PartitionSpec("year", time_part="year"),
    PartitionSpec("month", time_part="month"),
    PartitionSpec("day", time_part="day"),
    PartitionSpec("hour", time_part="hour"),
]


def flush_seconds(step, flush_after_seconds, timeout_secs):
    """The `flush_after_seconds` of a target, which also takes the setting as `timeout_secs`."""
    if flush_after_seconds is None:
        return timeout_secs
    if timeout_secs is not None and timeout_secs != flush_after_seconds:
        raise ValueError(
            f"{step}: flush_after_seconds={flush_after_seconds!r} and timeout_secs={timeout_secs!r} "
            "are the same setting: give one"
        )
    return flush_after_seconds


def check_positive(step, param, value, allow_none=True):
    """`value` as given, after checking it is a positive number (or None where allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{step}: {param} must be a positive number, got {value!r}")
    return value
