"""Aggregation flows run over the same events whole or in parts, for the restart property: events
1..k in one flow, then k+1..n in a new flow on a new Table over the same storage, give exactly the
features of one uninterrupted run."""

import datetime as dt
import math

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storey import (
    AggregateByKey,
    DataframeSource,
    EmitAfterMaxEvent,
    FieldAggregator,
    FixedWindows,
    NoopDriver,
    Reduce,
    SlidingWindows,
    SyncEmitSource,
    Table,
    build_flow,
)

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

EVENT = st.fixed_dictionaries(
    {
        "k": st.sampled_from(["k0", "k1", "k2"]),
        "t": st.integers(0, 600).map(lambda m: T0 + dt.timedelta(minutes=m)),
        "v": st.integers(-5, 60),
        "w": st.integers(0, 70),
    }
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


def late_shuffled(events, swaps):
    """`events` in time order, then some neighbours swapped: late events."""
    events = sorted(events, key=lambda e: e["t"])
    for i in swaps:
        if i + 1 < len(events):
            events[i], events[i + 1] = events[i + 1], events[i]
    return events


def restart_examples(test):
    """`test` given the examples of the restart property on a real storage (a server, a file):
    up to 30 events, some late, split anywhere, under each aggregator set and emit policy, the
    first flow live or from a DataFrame."""
    examples = given(
        events=st.lists(EVENT, min_size=1, max_size=30),
        swaps=st.lists(st.integers(0, 29), max_size=5),
        split=st.floats(0, 1),
        aggregators=st.sampled_from(sorted(AGGREGATOR_SETS)),
        policy=st.sampled_from(sorted(POLICIES)),
        first_bulk=st.booleans(),
    )
    return settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )(examples(test))


def assert_restart_continues_exactly(
    open_table, events, swaps, split, aggregators, policy, first_bulk, buffers=(3, 5)
):
    """The restart property: a flow over the first part of `events` (made late by `swaps`), then a
    new flow on a new table from `open_table()` over the rest, emit what flows over the same
    events on one in-memory table emit. `buffers` are the two live flows' buffer sizes."""
    events = late_shuffled(events, swaps)
    k = int(split * len(events))
    make, emit_policy = AGGREGATOR_SETS[aggregators], POLICIES[policy]
    if first_bulk and k:
        first = run_bulk(open_table(), events[:k], make, emit_policy)
    else:
        first = run_live(open_table(), events[:k], make, emit_policy, buffers[0])
    second = run_live(open_table(), events[k:], make, emit_policy, buffers[1])
    memory = Table("memory", NoopDriver())
    if emit_policy is None:
        expected = run_live(memory, events, make)
    else:
        # the emit policy counts events per flow: the same two flows on one in-memory table
        expected = run_live(memory, events[:k], make, emit_policy) + run_live(
            memory, events[k:], make, emit_policy
        )
    assert comparable(first + second) == comparable(expected)
