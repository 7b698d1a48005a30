"""Which partition each event's key belongs to: a hash of the key, the same in every process.

A key's windows live in one partition only if every event of the key is sent there, whatever file
it comes from. Keys that a table takes as one key must therefore hash alike: list keys by their
table form (`['a', 1]` is `'a.1'`), numbers by value (`1`, `1.0` and `True` are one dict key).
The hash is SHA-1 of that text, modulo the number of partitions: Python's own `hash` of a str
differs from process to process.
"""

import hashlib
import numbers

import numpy as np
import pandas as pd

from storey.table.keys import table_key


def key_text(key):
    """The text a key is hashed by: equal for keys a table holds as one."""
    key = table_key(key)
    if isinstance(key, str):
        return key
    if isinstance(key, numbers.Integral):
        return str(int(key))
    if isinstance(key, numbers.Real) and float(key).is_integer():
        return str(int(key))
    return str(key)


def partition_of(key, partitions):
    """The partition (0 .. partitions-1) of one key."""
    digest = hashlib.sha1(key_text(key).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % partitions


def partition_numbers(keys, partitions):
    """The partition of each key of a batch (an int64 array), hashing each distinct key once.

    `keys` is a batch's keys: a sequence, or a file source's lazy keys, which hand a text column
    as an arrow array without making a Python object per event."""
    n = len(keys)
    if partitions == 1 or n == 0:
        return np.zeros(n, dtype=np.int64)
    as_arrow = getattr(keys, "arrow", None)
    arrow = as_arrow() if as_arrow is not None else None
    if arrow is not None and not arrow.null_count:
        encoded = arrow.dictionary_encode()
        distinct = encoded.dictionary.to_pylist()
        codes = encoded.indices.to_numpy(zero_copy_only=False)
    else:
        values = list(keys)
        if any(isinstance(k, list) for k in values):
            values = [table_key(k) for k in values]
        codes, distinct = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
        distinct = list(distinct)
    buckets = np.array([partition_of(k, partitions) for k in distinct], dtype=np.int64)
    return buckets[codes]
