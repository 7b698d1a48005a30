"""Aggregation flows run over the same events whole or in parts, for the restart property: events
1..k in one flow, then k+1..n in a new flow on a new Table over the same storage, give exactly the
features of one uninterrupted run."""

import math

import pandas as pd

from storey import (
    AggregateByKey,
    DataframeSource,
    EmitAfterMaxEvent,
    FieldAggregator,
    FixedWindows,
    Reduce,
    SlidingWindows,
    SyncEmitSource,
    build_flow,
)

AGGREGATOR_SETS = {
    "sliding, every aggregation": lambda: [
        FieldAggregator(
            "a",
            "v",
            ["count", "sum", "sqr", "avg", "min", "max", "first", "last", "stddev", "stdvar"],
            SlidingWindows(["20m", "1h"], "10m"),
        )
    ],
    "fixed, every aggregation": lambda: [
        FieldAggregator(
            "f",
            "v",
            ["count", "sum", "sqr", "avg", "min", "max", "first", "last"],
            FixedWindows(["30m", "2h"]),
        )
    ],
    "sliding and fixed, max_value": lambda: [
        FieldAggregator("c", "v", ["sum", "count", "avg"], SlidingWindows(["1h"], "10m"), max_value=40),
        FieldAggregator("d", "w", ["sum", "max"], FixedWindows(["1h"]), max_value=50),
    ],
    "aggr_filter, two fields": lambda: [
        FieldAggregator(
            "g", "v", ["sum", "count", "max"], SlidingWindows(["30m", "2h"], "10m"), aggr_filter=_not_threes
        ),
        FieldAggregator("h", "w", ["sum", "last"], FixedWindows(["1h"])),
    ],
}

POLICIES = {"every event": None, "after 2 events": lambda: EmitAfterMaxEvent(2)}


def _not_threes(body):
    return body.get("v", 0) % 3 != 0


def run_live(table, events, aggregators, policy=None, buffer_size=8):
    """Emits `events` (bodies with 'k' and 't') without waiting for results, so that they enter the
    flow in batches of up to `buffer_size`; returns what the flow emitted."""
    kwargs = {} if policy is None else {"emit_policy": policy()}
    flow = build_flow(
        [
            SyncEmitSource(key_field="k", time_field="t", buffer_size=buffer_size),
            AggregateByKey(aggregators(), table, **kwargs),
            Reduce([], lambda acc, body: acc + [body]),
        ]
    ).run()
    for body in events:
        flow.emit(dict(body))
    flow.terminate()
    return flow.await_termination()


def run_bulk(table, events, aggregators, policy=None):
    """Replays `events` from a DataFrame (every body has every field)."""
    kwargs = {} if policy is None else {"emit_policy": policy()}
    flow = build_flow(
        [
            DataframeSource(pd.DataFrame(events), key_field="k", time_field="t"),
            AggregateByKey(aggregators(), table, **kwargs),
            Reduce([], lambda acc, body: acc + [body]),
        ]
    ).run()
    return flow.await_termination()


def comparable(outputs):
    """Outputs with NaN made equal to itself, and times as they were given, for ==."""
    return [
        {
            name: ("NaN" if isinstance(value, float) and math.isnan(value) else value)
            for name, value in body.items()
        }
        for body in outputs
    ]
