"""The aggregations: one entry each, driving the kernels, the tests and the benchmarks.

An aggregation is computed from base statistics that every period bucket keeps (count, sum, sum of
squares, min, max, first, last); derived ones (avg, stddev, stdvar) are finished from the base
ones, as the reference does. Each entry says which base statistics it needs (`stats`, a bit mask),
its code in the kernels (`code`, the case of `finish` in `storey.kernels.buckets`) and how to
compute it naively from the values of a window (`naive`, used by the tests).

Values in a window are (time, arrival, value) triples. NaN values count in `count` and make sums
NaN; `min`, `max`, `first` and `last` skip them. `first` is the value with the smallest time (ties
to the earliest arrival), `last` the one with the largest time (ties to the latest arrival).
"""

import math
from dataclasses import dataclass

__all__ = ["AGGREGATIONS", "Aggregation", "output_order", "stats_of"]

COUNT = 1
SUM = 2
SQR = 4
MIN = 8
MAX = 16
FIRST = 32
LAST = 64
# the base statistics a bucket can keep, in the order of their rings in the state
STAT_NAMES = ("count", "sum", "sqr", "min", "max", "first", "last")


@dataclass(frozen=True)
class Aggregation:
    name: str
    code: int
    stats: int
    naive: object
    # whether the aggregation can be undone (a value leaving a window subtracted from it)
    invertible: bool
    # whether it is finished from other aggregations' statistics (not kept itself)
    derived: bool = False


def _numbers(window):
    return [v for _, _, v in window if not math.isnan(v)]


def _count(window):
    return float(len(window))


def _sum(window):
    values = [v for _, _, v in window]
    if all(math.isfinite(v) for v in values):
        return math.fsum(values)
    return sum(values, 0.0)


def _sqr(window):
    return _sum([(t, a, v * v) for t, a, v in window])


def _avg(window):
    return _sum(window) / len(window) if window else math.nan


def _min(window):
    values = _numbers(window)
    return min(values) if values else math.nan


def _max(window):
    values = _numbers(window)
    return max(values) if values else math.nan


def _first(window):
    values = [(t, a, v) for t, a, v in window if not math.isnan(v)]
    return min(values, key=lambda x: (x[0], x[1]))[2] if values else math.nan


def _last(window):
    values = [(t, a, v) for t, a, v in window if not math.isnan(v)]
    return max(values, key=lambda x: (x[0], x[1]))[2] if values else math.nan


def _stdvar(window):
    n = len(window)
    if n < 2:
        return math.nan
    s = _sum(window)
    q = _sqr(window)
    return (n * q - s * s) / (n * (n - 1))


def _stddev(window):
    return math.sqrt(max(_stdvar(window), 0.0))


AGGREGATIONS = {
    a.name: a
    for a in (
        Aggregation("count", 0, COUNT, _count, True),
        Aggregation("sum", 1, SUM, _sum, True),
        Aggregation("sqr", 2, SQR, _sqr, True),
        Aggregation("avg", 3, COUNT | SUM, _avg, True, derived=True),
        Aggregation("min", 4, MIN, _min, False),
        Aggregation("max", 5, MAX, _max, False),
        Aggregation("first", 6, FIRST, _first, False),
        Aggregation("last", 7, LAST, _last, False),
        Aggregation("stdvar", 8, COUNT | SUM | SQR, _stdvar, True, derived=True),
        Aggregation("stddev", 9, COUNT | SUM | SQR, _stddev, True, derived=True),
    )
}


def output_order(names):
    """The order of a FieldAggregator's aggregations in its features, as the reference orders
    them: the base ones as a Python set of them (built in the requested order) iterates, then the
    derived ones in the requested order. A set of strings iterates in the order of their hashes,
    which depend on PYTHONHASHSEED: the same order as the reference's in a process of the same
    seed."""
    names = list(dict.fromkeys(names))
    base = set(name for name in names if not AGGREGATIONS[name].derived)
    return list(base) + [name for name in names if AGGREGATIONS[name].derived]


def stats_of(names):
    """The base statistics (bit mask) needed by the aggregations `names`; count is always kept."""
    stats = COUNT
    for name in names:
        stats |= AGGREGATIONS[name].stats
    return stats
