"""Partition directories of events (`key=a/year=2020/...`), computed for a whole batch at once.

Each partition level is computed on the distinct values of its column only (keys hashed with
sha1 once per distinct key, time parts from the int64 event times), then the levels are
combined into one group number per event.
"""

import hashlib
from datetime import timedelta

import numpy as np

from ...core.lazy import LazyModule
from .values import body_rows, field_values, time_info, time_ns

pd = LazyModule("pandas")

_MICROSECOND = timedelta(microseconds=1)
_TIME_UNITS = {"date": "D", "year": "Y", "month": "M", "day": "D", "hour": "h", "minute": "m", "second": "s"}
_TIME_FORMATS = {
    "date": "%Y-%m-%d",
    "year": "%Y",
    "month": "%m",
    "day": "%d",
    "hour": "%H",
    "minute": "%M",
    "second": "%S",
}


def partition_groups(batch, specs, positions=None):
    """(directories, inverse): the distinct relative directories of the batch's events, in order
    of first appearance, and for each event the index of its directory. `positions` maps column
    names to their place in list bodies."""
    n = batch.n
    codes = np.zeros(n, dtype=np.int64)
    labels = [()]
    for spec in specs:
        level_codes, level_labels = _level(batch, spec, positions or {})
        codes = codes * len(level_labels) + level_codes
        labels = [(*prefix, label) for prefix in labels for label in level_labels]
    uniques, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    dirs = ["/".join(labels[int(uniques[i])]) for i in order]
    return dirs, rank[inverse.reshape(-1)]


def _level(batch, spec, positions):
    """(codes, labels) of one partition level: per event an index into `labels`, the
    'name=value' directory names."""
    if spec.time_part is not None:
        return _time_level(batch, spec)
    if spec.meta == "key":
        values = batch.keys
        texts = key_texts
    else:
        rows = body_rows(batch)
        if rows is None:
            cols = batch.columns
            if spec.field in cols:
                values = np.asarray(cols.data[spec.field])
                absent = cols.absent_rows(spec.field)
                if absent is not None:
                    values = values.astype(object)
                    values[absent] = None
                elif values.dtype.kind != "O":
                    values = cols.column_list(spec.field) if spec.field in cols.converters else values
            else:
                values = [None] * batch.n
        else:
            values = field_values(rows, spec.field, positions.get(spec.field))
        texts = _value_texts
    codes, distinct = factorize_values(values)
    strings = texts(distinct)
    if spec.buckets is not None:
        strings = [str(_sha1_bucket(s, spec.buckets)) for s in strings]
        name = f"hash{spec.buckets}_{spec.name}"
    else:
        name = spec.name
    # distinct values may still render to the same text (1 and 1.0): merge them
    label_codes, labels = pd.factorize(np.asarray([f"{name}={s}" for s in strings], dtype=object))
    return label_codes[codes], list(labels)


def factorize_values(values):
    """(codes, distinct values) keeping None and NaN as values of their own."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
        codes, uniques = pd.factorize(values)
        return codes, uniques.tolist()
    try:
        codes, uniques = pd.factorize(pd.Series(values, dtype=object))
    except TypeError:  # unhashable values (lists): group by their text
        texts = [_text(v) for v in values]
        codes, uniques = pd.factorize(np.asarray(texts, dtype=object))
        return codes, [_Text(t) for t in uniques]
    uniques = list(uniques)
    missing = np.flatnonzero(codes < 0)
    if len(missing):
        # None and NaN are both missing to pandas, but the reference writes them apart
        extra = {}
        for i in missing.tolist():
            value = values[i]
            label = "None" if value is None else _text(value)
            if label not in extra:
                extra[label] = len(uniques)
                uniques.append(_Text(label))
            codes[i] = extra[label]
    return codes, uniques


class _Text(str):
    """A value already rendered as directory text."""


def _text(value):
    if isinstance(value, list | tuple):
        return ".".join(str(v) for v in value)
    return str(value)


def _value_texts(values):
    return [v if isinstance(v, _Text) else str(v) for v in values]


def key_texts(values):
    """The directory (or file name) texts of distinct event keys: list keys joined with '.'."""
    return [v if isinstance(v, _Text) else _text(v) for v in values]


def _sha1_bucket(text, buckets):
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % buckets


def _time_level(batch, spec):
    tz, _ = time_info(batch)
    ns = time_ns(batch)
    if tz is not None and batch._time_values is not None:
        # each event's own zone (events may carry different offsets)
        offsets = [v.utcoffset() for v in batch._time_values]
        ns = ns + np.array([o // _MICROSECOND for o in offsets], dtype=np.int64) * 1000
    elif tz is not None:
        index = pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
        ns = index.tz_localize(None).asi8
    wall = ns.astype("datetime64[ns]").astype(f"datetime64[{_TIME_UNITS[spec.time_part]}]")
    distinct, codes = np.unique(wall, return_inverse=True)
    texts = pd.DatetimeIndex(distinct.astype("datetime64[ns]")).strftime(_TIME_FORMATS[spec.time_part])
    return codes.reshape(-1), [f"{spec.name}={t}" for t in texts]
