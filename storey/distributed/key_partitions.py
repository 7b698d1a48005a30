"""Which partition each event's key belongs to: a hash of the key, the same in every process.

A key's windows live in one partition only if every event of the key is sent there, whatever file
it comes from. Keys that a table takes as one key must therefore hash alike: list keys by their
table form (`['a', 1]` is `'a.1'`), numbers by value (`1`, `1.0` and `True` are one dict key).
The hash is of that text's UTF-8 bytes (a polynomial hash modulo 2**64, mixed by splitmix64's
finalizer), computed with array operations over an arrow string array: no Python object per
event when the keys are a text column. Python's own `hash` of a str differs from process to
process, so it cannot be used.
"""

import numbers

import numpy as np
import pandas as pd
import pyarrow as pa

from storey.table.keys import table_key

_BASE = np.uint64(0x100000001B3)


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


def text_hashes(texts):
    """A uint64 hash of each string of the arrow string array `texts` (no nulls)."""
    if not pa.types.is_large_string(texts.type):
        texts = texts.cast(pa.large_string())
    n = len(texts)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset : texts.offset + n + 1]
    first, last = int(offsets[0]), int(offsets[-1])
    lengths = np.diff(offsets)
    data = np.frombuffer(texts.buffers()[2], dtype=np.uint8)[first:last] if last > first else []
    longest = int(lengths.max())
    # byte i of a string of length L weighs BASE**(L-1-i): the string's Horner polynomial
    powers = np.cumprod(np.concatenate(([1], np.full(max(longest - 1, 0), _BASE))).astype(np.uint64))
    from_end = np.repeat(offsets[1:] - first - 1, lengths) - np.arange(last - first)
    terms = np.append(np.asarray(data, dtype=np.uint64) * powers[from_end], np.uint64(0))
    sums = np.add.reduceat(terms, offsets[:-1] - first)
    sums[lengths == 0] = 0
    h = sums ^ lengths.astype(np.uint64)
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def partition_of(key, partitions):
    """The partition (0 .. partitions-1) of one key."""
    return int(text_hashes(pa.array([key_text(key)], pa.large_string()))[0] % np.uint64(partitions))


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
        texts = encoded.dictionary
        codes = encoded.indices.to_numpy(zero_copy_only=False)
    else:
        values = list(keys)
        if any(isinstance(k, list) for k in values):
            values = [table_key(k) for k in values]
        codes, distinct = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
        texts = pa.array([key_text(k) for k in distinct], pa.large_string())
    buckets = (text_hashes(texts) % np.uint64(partitions)).astype(np.int64)
    return buckets[codes]
