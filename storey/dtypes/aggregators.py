"""FieldAggregator: one field, aggregated over a set of windows, and its dict form."""

import numbers

from ..kernels.registry import AGGREGATIONS, output_order
from .windows import FixedWindows, SlidingWindows

__all__ = ["FieldAggregator", "aggregator_from"]


class FieldAggregator:
    """Field Aggregator represents an set of aggregation features.

    Each aggregation of each window is a feature named `<name>_<aggr>_<window>`, e.g.
    `clicks_sum_1h`.

    :param name: Name for the feature.
    :param field: Field in the event body to aggregate, or a function of the body returning the
        value to aggregate. Events whose value is missing or None are not aggregated.
    :param aggr: List of aggregates to apply. Valid values are: [count, sum, sqr, avg, max, min,
        last, first, stddev, stdvar]
    :param windows: Time windows to aggregate the data by (SlidingWindows or FixedWindows).
    :param aggr_filter: Filter specifying which events to aggregate: a function of the body that
        returns whether to aggregate the event. (Optional)
    :param max_value: Maximum value for the aggregation (Optional): bucket and window values are
        capped at it.
    """

    def __init__(self, name, field, aggr, windows, aggr_filter=None, max_value=None):
        if not isinstance(name, str) or not name:
            raise TypeError(f"FieldAggregator: name must be a non-empty string, got {name!r}")
        if not (isinstance(field, str) or callable(field)):
            raise TypeError(
                f"FieldAggregator {name!r}: field must be a field name (str) or a function of the body, "
                f"got {type(field).__name__}: {field!r}"
            )
        if isinstance(aggr, str) or not isinstance(aggr, list | tuple):
            raise TypeError(
                f"FieldAggregator {name!r}: aggr must be a list of aggregation names, "
                f"got {type(aggr).__name__}: {aggr!r}"
            )
        unknown = [a for a in aggr if a not in AGGREGATIONS]
        if unknown:
            raise ValueError(
                f"FieldAggregator {name!r}: unknown aggregation(s) {unknown!r}; valid aggregations are "
                f"{sorted(AGGREGATIONS)!r} (note the spelling 'stddev')"
            )
        if not isinstance(windows, SlidingWindows | FixedWindows):
            raise TypeError(
                f"FieldAggregator {name!r}: windows must be SlidingWindows or FixedWindows, "
                f"got {type(windows).__name__}: {windows!r}"
            )
        if aggr_filter is not None and not callable(aggr_filter):
            raise TypeError(
                f"FieldAggregator {name!r}: aggr_filter must be callable, got {type(aggr_filter).__name__}"
            )
        if max_value is not None and (isinstance(max_value, bool) or not isinstance(max_value, numbers.Real)):
            raise TypeError(
                f"FieldAggregator {name!r}: max_value must be a number or None, "
                f"got {type(max_value).__name__}: {max_value!r}"
            )
        self.name = name
        self.field = field
        # as given (repeats kept, as in the reference); features follow `output_aggregations`
        self.aggregations = list(aggr)
        self.output_aggregations = output_order(aggr)
        self.windows = windows
        self.aggr_filter = aggr_filter
        self.max_value = max_value

    def __repr__(self):
        return (
            f"FieldAggregator({self.name!r}, {self.field!r}, {self.aggregations!r}, {self.windows!r}"
            + (f", max_value={self.max_value!r}" if self.max_value is not None else "")
            + ")"
        )

    def feature_names(self):
        """The names of this aggregator's features, aggregation by aggregation (in the order of
        `output_aggregations`), window by window (shortest first)."""
        windows = list(dict.fromkeys(text for _, text in self.windows.windows_ns))
        return [f"{self.name}_{aggr}_{window}" for aggr in self.output_aggregations for window in windows]


_DICT_KEYS = ("name", "column", "operations", "windows", "period", "aggregation_filter", "max_value")


def aggregator_from(step_name, aggregate):
    """A FieldAggregator given as one or in dict form, with the reference's keys: {'name', 'column',
    'operations', 'windows', 'period' (sliding windows when the key is given, its default period
    when None; fixed windows without it), 'aggregation_filter', 'max_value'}."""
    if isinstance(aggregate, FieldAggregator):
        return aggregate
    if not isinstance(aggregate, dict):
        raise TypeError(
            f"{step_name}: each aggregate must be a FieldAggregator or a dict, "
            f"got {type(aggregate).__name__}: {aggregate!r}"
        )
    unknown = set(aggregate) - set(_DICT_KEYS)
    if unknown:
        raise ValueError(
            f"{step_name}: unexpected keys {sorted(unknown)!r} in aggregate {aggregate!r}; "
            f"the keys of a dict aggregate are {list(_DICT_KEYS)!r}"
        )
    missing = [k for k in ("name", "column", "operations", "windows") if k not in aggregate]
    if missing:
        raise ValueError(f"{step_name}: aggregate {aggregate!r} lacks {missing!r}")
    if "period" in aggregate:
        windows = SlidingWindows(aggregate["windows"], aggregate["period"])
    else:
        windows = FixedWindows(aggregate["windows"])
    return FieldAggregator(
        aggregate["name"],
        aggregate["column"],
        aggregate["operations"],
        windows,
        aggregate.get("aggregation_filter"),
        aggregate.get("max_value"),
    )
