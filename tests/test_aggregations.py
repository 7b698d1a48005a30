"""AggregateByKey and QueryByKey: the conformance cases, our defined behaviour where the reference
is defective (reference-defects.md 1-6), bulk == live, emit policies, errors."""

import asyncio
import datetime as dt
import math
import random
import time

import numpy as np
import pandas as pd
import pytest

from storey import (
    AggregateByKey,
    AsyncEmitSource,
    Complete,
    Context,
    CSVSource,
    DataframeSource,
    Map,
    NoopDriver,
    NoSqlTarget,
    ParquetSource,
    QueryByKey,
    Reduce,
    SyncEmitSource,
    Table,
    build_flow,
)
from storey.dtypes import (
    EmitAfterMaxEvent,
    EmitAfterPeriod,
    FieldAggregator,
    FixedWindows,
    FixedWindowType,
    SlidingWindows,
)
from tests.support.conformance import assert_matches, decode, input_events, load_case
from tests.support.replay_runs import BatchLog, frame
from tests.support.replay_runs import run_flow as run_replay
from tests.support.step_runs import KINDS, Capture, run
from tests.test_kernels import Naive

FIRST_LAST = r"_(first|last)_"
ALL = ["count", "sum", "sqr", "avg", "max", "min", "last", "first", "stddev", "stdvar"]
CLEAN = ["count", "sum", "sqr", "avg", "max", "min", "last", "stddev", "stdvar"]
T0 = dt.datetime(2020, 7, 21, 21, 40, tzinfo=dt.UTC)


def fa(name, field, aggr, windows, period=None, **kwargs):
    w = SlidingWindows(windows, period) if period else FixedWindows(windows)
    return FieldAggregator(name, field, aggr, w, **kwargs)


def table():
    return Table("conf_table", NoopDriver())


def aggregate(kind, case_name, aggregates, label="events", **kwargs):
    """Runs the case's events through SyncEmitSource/AsyncEmitSource -> AggregateByKey -> capture."""
    case = load_case(case_name)
    capture = Capture()
    run(kind, [AggregateByKey(aggregates, table(), **kwargs), capture], input_events(case, label))
    return case, capture.seen


# ---------------------------------------------------------------- conformance cases
CASES = {
    "agg_sliding_basic": lambda: [
        fa("number_of_stuff", "col1", ["sum", "avg", "min", "max", "count"], ["1h", "2h", "24h"], "10m")
    ],
    "agg_sliding_all_aggregations": lambda: [fa("x", "v", ALL, ["30m", "1h", "3h"], "5m")],
    "agg_fixed_all_aggregations": lambda: [fa("x", "v", ALL, ["15m", "1h", "4h"])],
    "agg_sliding_multikey": lambda: [
        fa("m", "v", ["sum", "count", "max", "min", "avg"], ["20m", "1h", "2h"], "10m")
    ],
    "agg_fixed_multikey": lambda: [
        fa("m", "v", ["sum", "count", "max", "min", "avg", "first", "last"], ["15m", "1h", "6h"])
    ],
    "agg_sliding_sparse_far_apart": lambda: [
        fa("s", "v", ["sum", "count", "max", "min", "last", "first", "avg"], ["1h", "2h", "24h"], "10m")
    ],
    "agg_fixed_sparse_far_apart": lambda: [
        fa("s", "v", ["sum", "count", "max", "min", "last", "first", "avg"], ["1h", "2h", "24h"])
    ],
    "agg_aggr_filter": lambda: [
        fa("all", "v", ["sum", "count"], ["1h", "3h"], "10m"),
        fa(
            "only_a",
            "v",
            ["sum", "count", "max"],
            ["1h", "3h"],
            "10m",
            aggr_filter=lambda b: b["kind"] == "a",
        ),
    ],
    "agg_max_value": lambda: [
        fa("capped", "v", ["sum", "count", "max", "min"], ["1h", "2h"], "10m", max_value=100),
        fa("free", "v", ["sum", "max"], ["1h", "2h"], "10m"),
    ],
    "agg_missing_values": lambda: [
        fa("fa", "a", ["sum", "count", "avg", "min"], ["1h", "2h"], "10m"),
        fa("fb", "b", ["sum", "count", "max", "last"], ["1h", "2h"], "10m"),
    ],
    "agg_multiple_aggregators": lambda: [
        fa("price", "price", ["sum", "avg", "max"], ["1h", "6h"], "30m"),
        fa("qty", "qty", ["sum", "count"], ["15m", "45m"], "5m"),
        fa("qtyf", "qty", ["min", "last"], ["1h", "1d"]),
    ],
    "agg_sliding_uncommon_windows": lambda: [
        fa("u", "v", ["count", "sum", "max"], ["20m", "30m", "50m"], "10m")
    ],
    "agg_default_periods": lambda: [
        FieldAggregator("sd", "v", ["sum", "count"], SlidingWindows(["1h", "2h"])),
        fa("fd", "v", ["sum", "count"], ["1d"]),
    ],
    "agg_dict_aggregates": lambda: [
        {
            "name": "sl",
            "column": "v",
            "operations": ["sum", "count", "avg"],
            "windows": ["1h", "2h"],
            "period": "10m",
        },
        {"name": "fx", "column": "v", "operations": ["max", "min"], "windows": ["1h", "3h"]},
    ],
    "agg_large_in_order": lambda: [
        fa("sv", "v", CLEAN, ["10m", "1h", "6h"], "5m"),
        fa("fv", "v", CLEAN, ["30m", "2h", "1d"]),
        fa("sw", "w", ["sum", "count", "avg", "max"], ["1d"], "1h"),
    ],
    "agg_seconds_windows": lambda: [
        fa("s", "v", ["sum", "count", "max", "first", "last"], ["10s", "30s", "1m"], "5s"),
        fa("f", "v", ["sum", "count"], ["10s", "1m"]),
    ],
    "agg_same_timestamp": lambda: [
        fa("t", "v", ["first", "last", "count", "sum", "min", "max"], ["1h"], "10m"),
        fa("tf", "v", ["first", "last"], ["1h"]),
    ],
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case_name", sorted(CASES))
def test_conformance_cases(kind, case_name):
    # first/last follow defect 1 (tested in test_kernels); everything else is the reference's
    case, seen = aggregate(kind, case_name, CASES[case_name]())
    assert_matches(case["expected"]["events"], seen, ignore_keys=FIRST_LAST)


@pytest.mark.parametrize("kind", KINDS)
def test_emit_after_max_event_per_key(kind):
    aggregates = [fa("c", "v", ["count", "sum"], ["1h", "2h"], "10m")]
    case, seen = aggregate(kind, "agg_emit_after_max_event", aggregates, emit_policy=EmitAfterMaxEvent(3))
    assert_matches(case["expected"]["events"], seen)


@pytest.mark.parametrize("kind", KINDS)
def test_emit_policy_dict(kind):
    aggregates = [fa("c", "v", ["count", "max"], ["1h"])]
    policy = {"mode": "maxEvents", "maxEvents": 2}
    case, seen = aggregate(kind, "agg_emit_policy_dict", aggregates, emit_policy=policy)
    assert_matches(case["expected"]["events"], seen)


@pytest.mark.parametrize("kind", KINDS)
def test_emit_after_period_emits_nothing_in_a_short_run(kind):
    aggregates = [fa("c", "v", ["count"], ["30d"], "10d")]
    case, seen = aggregate(kind, "agg_emit_after_period_no_output", aggregates, emit_policy=EmitAfterPeriod())
    assert seen == case["expected"]["events"] == []


@pytest.mark.parametrize("kind", KINDS)
def test_aliases(kind):
    aliases = {
        "stuff_min_2h": "stuff_min_2h",
        "stuff_max_2h": "top_2h",
        "stuff_avg_1h": "mean1h",
        "not_a_feature": "x",
    }
    aggregates = [fa("stuff", "col1", ["sum", "avg", "min", "max"], ["1h", "2h"], "10m")]
    case, seen = aggregate(kind, "agg_aliases", aggregates, aliases=aliases)
    assert_matches(case["expected"]["events"], seen)


@pytest.mark.parametrize("kind", KINDS)
def test_feature_names_with_quotes_and_braces(kind):
    name = 'it\'s {a} "b"'
    aggregates = [fa(name, "v", ["sum", "count"], ["1h"], "10m")]
    result = run(
        kind,
        [
            AggregateByKey(aggregates, table(), aliases={f"{name}_count_1h": "n"}),
            Reduce([], lambda acc, b: acc + [b]),
        ],
        [({"v": 2}, "k", T0), ({"v": 3, "n": "mine"}, "k", T0)],
    )
    assert result == [{f"{name}_sum_1h": 2.0, "n": 1.0, "v": 2}, {f"{name}_sum_1h": 5.0, "n": "mine", "v": 3}]


@pytest.mark.parametrize("kind", KINDS)
def test_features_follow_the_order_of_the_aggregators_whatever_their_windows(kind):
    # as in the reference: sliding and fixed windows interleaved as the step lists them
    aggregates = [
        fa("a", "v", ["sum"], ["1h"], "10m"),
        fa("b", "v", ["sum"], ["1h"]),
        fa("c", "w", ["max"], ["1h"], "10m"),
    ]
    result = run(
        kind,
        [AggregateByKey(aggregates, table()), Reduce([], lambda acc, b: acc + [list(b)])],
        [({"v": 1, "w": 2}, "k", T0)],
    )
    assert result == [["a_sum_1h", "b_sum_1h", "c_max_1h", "v", "w"]]


@pytest.mark.parametrize("kind", KINDS)
def test_augmentation_fn(kind):
    def augment(body, features):
        return {"original": body, "features": features, "n_features": len(features)}

    aggregates = [fa("q", "v", ["sum", "count"], ["1h"], "10m")]
    case, seen = aggregate(kind, "agg_augmentation_fn", aggregates, augmentation_fn=augment)
    assert_matches(case["expected"]["events"], seen)


@pytest.mark.parametrize("kind", KINDS)
def test_key_field_and_key_callable(kind):
    case, seen = aggregate(
        kind, "agg_key_field_name", [fa("s", "v", ["sum", "count", "last"], ["1h"], "10m")], key="user"
    )
    assert_matches(case["expected"]["events"], seen)
    case, seen = aggregate(
        kind,
        "agg_key_callable",
        [fa("s", "v", ["sum", "max"], ["1h"])],
        key=lambda body: body["a"] + "-" + body["b"],
    )
    assert_matches(case["expected"]["events"], seen)


@pytest.mark.parametrize("kind", KINDS)
def test_source_key_and_time_fields(kind):
    case = load_case("agg_time_field_source")
    capture = Capture()
    steps = [AggregateByKey([fa("s", "v", ["sum", "count", "min"], ["1h", "2h"], "15m")], table()), capture]
    run(kind, steps, [decode(e["body"]) for e in case["inputs"]["events"]], key_field="user", time_field="ts")
    assert_matches(case["expected"]["events"], capture.seen)


@pytest.mark.parametrize("kind", KINDS)
def test_enrich_with_attributes_written_by_nosql_target(kind):
    case = load_case("agg_enrich_with")
    t = table()
    capture = Capture()
    steps = [
        NoSqlTarget(t, columns=["name", "tier"]),
        AggregateByKey(
            [fa("amt", "amount", ["sum", "count"], ["1h"], "10m")],
            t,
            enrich_with=["name", "tier", "missing_attr"],
            aliases={"tier": "level"},
        ),
        capture,
    ]
    run(kind, steps, input_events(case))
    assert_matches(case["expected"]["events"], capture.seen)


def test_dataframe_source():
    case = load_case("agg_dataframe_source")
    df = frame(case["inputs"]["dataframe"])
    step = AggregateByKey([fa("amt", "amount", ["sum", "count", "max"], ["1h", "4h"], "30m")], table())
    capture = Capture()
    run_replay(DataframeSource(df, key_field="user", time_field="when"), step, capture)
    assert_matches(case["expected"]["events"], capture.seen)


# ---------------------------------------------------------------- set aside: our behaviour
@pytest.mark.parametrize(
    "case_name, aggregators",
    [
        (
            "agg_sliding_out_of_order",
            lambda: [
                fa(
                    "o",
                    "v",
                    ["sum", "count", "min", "max", "first", "last", "avg"],
                    ["30m", "1h", "2h"],
                    "10m",
                )
            ],
        ),
        (
            "agg_fixed_out_of_order",
            lambda: [
                fa("o", "v", ["sum", "count", "min", "max", "first", "last", "avg"], ["30m", "1h", "3h"])
            ],
        ),
        (
            "agg_large_random",
            lambda: [
                fa("sv", "v", ALL, ["10m", "1h", "6h"], "5m"),
                fa("fv", "v", ALL, ["30m", "2h", "1d"]),
                fa("sw", "w", ["sum", "count", "avg"], ["1d"], "1h"),
            ],
        ),
    ],
)
def test_late_events_follow_the_defined_rule(case_name, aggregators):
    # defect 2: a late event sees the window that ends at its own time, later events see it,
    # nothing is lost or counted twice while its bucket is kept; derived values agree with sums
    case, seen = aggregate("sync", case_name, aggregators())
    models = [Naive(a) for a in aggregators()]
    for arrival, ((body, key, t), got) in enumerate(zip(input_events(case), seen, strict=True)):
        expected = {}
        ns = int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000
        for model in models:
            expected.update(model.process(key, ns, body.get(model.agg.field), arrival))
        features = {k: v for k, v in got["body"].items() if k not in body}
        assert set(features) == set(expected), f"event {arrival}"
        for name, value in expected.items():
            actual = features[name]
            assert (math.isnan(value) and actual == "<NaN>") or math.isclose(
                actual, value, rel_tol=1e-8, abs_tol=1e-9
            ), name
        for model in models:
            for w in model.windows:
                n = features.get(f"{model.agg.name}_count_{w}")
                s = features.get(f"{model.agg.name}_sum_{w}")
                avg = features.get(f"{model.agg.name}_avg_{w}")
                if n and s is not None and avg is not None and avg != "<NaN>":
                    assert math.isclose(avg, s / n, rel_tol=1e-8)


def test_invalid_configurations():
    sliding = SlidingWindows(["1h"], "10m")
    with pytest.raises(TypeError, match="unique"):
        AggregateByKey(
            [FieldAggregator("x", "v", ["sum"], sliding), FieldAggregator("x", "v", ["count"], sliding)],
            table(),
        )
    with pytest.raises(TypeError, match="emit_policy"):
        AggregateByKey([FieldAggregator("x", "v", ["sum"], sliding)], table(), emit_policy="every")
    with pytest.raises(TypeError, match="sometimes"):
        AggregateByKey(
            [FieldAggregator("x", "v", ["sum"], sliding)], table(), emit_policy={"mode": "sometimes"}
        )
    # defect 3: unknown names are a ValueError at construction, listing the valid ones
    with pytest.raises(ValueError, match="stddev"):
        AggregateByKey([FieldAggregator("x", "v", ["sttdev"], sliding)], table())
    with pytest.raises(ValueError, match="median"):
        AggregateByKey([{"name": "x", "column": "v", "operations": ["median"], "windows": ["1h"]}], table())


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"aggregates": "x"}, TypeError, "aggregates"),
        ({"aggregates": [3]}, TypeError, "FieldAggregator"),
        ({"table": 3}, TypeError, "table"),
        ({"table": "missing"}, TypeError, "context"),
        ({"key": 3}, TypeError, "key"),
        ({"augmentation_fn": 3}, TypeError, "augmentation_fn"),
        ({"enrich_with": "name"}, TypeError, "enrich_with"),
        ({"aliases": ["a"]}, TypeError, "aliases"),
    ],
)
def test_bad_parameters_name_the_step(kwargs, error, match):
    args = {"aggregates": [fa("x", "v", ["sum"], ["1h"], "10m")], "table": table(), **kwargs}
    with pytest.raises(error, match=match) as info:
        AggregateByKey(**args, name="agg")
    assert "agg" in str(info.value)


def test_table_by_name_from_the_context():
    t = table()
    step = AggregateByKey(
        [fa("x", "v", ["sum"], ["1h"], "10m")], "mine", context=Context(initial_tables={"mine": t})
    )
    capture = Capture()
    run("sync", [step, capture], [({"v": 2}, "k", T0)])
    assert capture.seen[0]["body"]["x_sum_1h"] == 2.0
    assert t._aggregation_state is not None


def test_a_table_holds_one_definition_per_aggregator_name():
    t = table()
    AggregateByKey([fa("x", "v", ["sum"], ["1h"], "10m")], t)
    AggregateByKey([fa("x", "v", ["sum"], ["1h"], "10m")], t)  # the same again: shares the state
    with pytest.raises(ValueError, match="'x'"):
        AggregateByKey([fa("x", "v", ["max"], ["1h"], "10m")], t)


@pytest.mark.parametrize("kind", KINDS)
def test_max_value_with_derived_aggregations_works(kind):
    # defect 4: the reference fails at the first event
    case = load_case("agg_max_value_with_avg_raises")
    capture = Capture()
    step = AggregateByKey([fa("capped", "v", ["sum", "avg"], ["1h"], "10m", max_value=10)], table())
    run(kind, [step, capture], input_events(case))
    assert [e["body"] for e in capture.seen] == [
        {"v": 1, "capped_sum_1h": 1.0, "capped_avg_1h": 1.0},
        {"v": 2, "capped_sum_1h": 3.0, "capped_avg_1h": 1.5},
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_an_event_without_the_field_reads_the_windows_ending_at_its_time_with_max_value(kind):
    # as storey 1.0.6 does with max_value (fixed windows): each window's length of buckets ending
    # at the event's time, over the cycle (20m) that holds the latest value; nothing before it
    # (storey rounds toward zero there, so that the bucket before the cycle reads as its first)
    aggregates = [fa("x", "v", ["sum", "count", "max"], ["10m", "20m"], max_value=50)]
    start = dt.datetime(2020, 7, 21, tzinfo=dt.UTC)
    minutes = [(0, 1), (3, 2), (27, 8), (21, None), (19, None), (5, None), (41, None)]
    events = [
        ({"v": v} if v is not None else {"w": 1}, "k", start + dt.timedelta(minutes=m)) for m, v in minutes
    ]
    capture = Capture()
    run(kind, [AggregateByKey(aggregates, table()), capture], events)
    bodies = [e["body"] for e in capture.seen]
    empty = {"x_sum_10m": 0.0, "x_count_10m": 0.0, "x_max_10m": "<-inf>"}  # as Capture encodes it
    empty.update({k.replace("10m", "20m"): v for k, v in empty.items()})
    assert bodies[3] == {"w": 1, **empty}
    assert bodies[4] == {"w": 1}
    assert bodies[5] == {"w": 1}
    assert bodies[6] == {"w": 1, **empty, "x_sum_20m": 8.0, "x_count_20m": 1.0, "x_max_20m": 8.0}


@pytest.mark.parametrize("kind", KINDS)
def test_an_event_without_the_field_reads_the_sliding_windows_ending_at_its_time_with_max_value(kind):
    # as storey 1.0.6 does with max_value (sliding windows, 5m buckets): the windows ending at the
    # event's bucket, from the buckets the key keeps (20m: its latest bucket and the 3 before)
    aggregates = [fa("x", "v", ["sum", "count", "max"], ["10m", "20m"], "5m", max_value=50)]
    start = dt.datetime(2020, 7, 21, tzinfo=dt.UTC)
    minutes = [(0, 1), (3, 2), (27, 8), (41, None), (30, None), (5, None)]
    events = [
        ({"v": v} if v is not None else {"w": 1}, "k", start + dt.timedelta(minutes=m)) for m, v in minutes
    ]
    capture = Capture()
    run(kind, [AggregateByKey(aggregates, table()), capture], events)
    bodies = [e["body"] for e in capture.seen]
    eight = {"x_sum_10m": 8.0, "x_count_10m": 1.0, "x_max_10m": 8.0}
    eight.update({k.replace("10m", "20m"): v for k, v in eight.items()})
    # 41: 10m holds buckets 35-40 (nothing), 20m 25-40 (the 8 at 27), past the latest event
    assert bodies[3] == {"w": 1, **eight, "x_sum_10m": 0.0, "x_count_10m": 0.0, "x_max_10m": "<-inf>"}
    assert bodies[4] == {"w": 1, **eight}  # 30: both windows hold bucket 25
    assert bodies[5] == {"w": 1}  # 5: bucket 5 is no longer kept


def _emitted_reads(kind, aggregates, events, policy):
    """The bodies AggregateByKey emits for (minute, body) events of one key."""
    start = dt.datetime(2020, 7, 21, 21, 0, tzinfo=dt.UTC)
    capture = Capture()
    timed = [(body, "k", start + dt.timedelta(minutes=m)) for m, body in events]
    run(kind, [AggregateByKey(aggregates, table(), emit_policy=policy), capture], timed)
    return [e["body"] for e in capture.seen]


def _counts_at(buckets, at, sizes):
    """Count features of values in 10m `buckets`, over windows of `sizes` buckets ending at `at`."""
    return [float(sum(1 for b in buckets if at - size < b <= at)) for size in sizes]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("later", range(7))
def test_an_emitted_event_without_the_field_reads_windows_that_moved_on_unread_at_its_time(kind, later):
    # as storey 1.0.6 does with EmitAfterMaxEvent: a value `later` buckets after the key's first
    # one, neither emitted, moves its windows on when that is 2S buckets or more (S: the windows'
    # least common multiple, here 2), as far as they start again; the next emitted event without
    # a value then reads them at its own time, else as they stand
    aggregates = [fa("x", "v", ["count"], ["10m", "20m"], "10m")]
    events = [(1, {"v": 1}), (later * 10 + 3, {"v": 1}), (later * 10 + 14, {"w": 1})]
    emitted = _emitted_reads(kind, aggregates, events, EmitAfterMaxEvent(3))
    read_at = later + 1 if later >= 4 else later
    assert [emitted[0]["x_count_10m"], emitted[0]["x_count_20m"]] == _counts_at([0, later], read_at, [1, 2])
    # emitting every event reads them as they stand
    every = _emitted_reads(kind, aggregates, events, EmitAfterMaxEvent(1))
    assert [every[2]["x_count_10m"], every[2]["x_count_20m"]] == _counts_at([0, later], later, [1, 2])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("later", range(5))
def test_windows_with_min_or_max_move_on_unread_by_at_least_the_shortest_window(kind, later):
    # with min/max/first/last the reference's windows move on in steps of at least the shortest
    # window (here 20m: 2 buckets); a moved window left empty has max -inf, as it reports it
    aggregates = [fa("x", "v", ["count", "max"], ["20m"], "10m")]
    events = [(1, {"v": 1}), (later * 10 + 3, {"v": 2}), (later * 10 + 14, {"w": 1})]
    (body,) = _emitted_reads(kind, aggregates, events, EmitAfterMaxEvent(3))
    read_at = later + 1 if later >= 2 else later
    assert [body["x_count_20m"]] == _counts_at([0, later], read_at, [2])
    assert body["x_max_20m"] == 2.0


@pytest.mark.parametrize("kind", KINDS)
def test_after_such_a_read_the_windows_stay_where_it_moved_them(kind):
    aggregates = [fa("x", "v", ["count", "max"], ["10m", "20m"], "10m")]
    events = [(1, {"v": 1}), (53, {"v": 1}), (64, {"w": 1}), (65, {"w": 1}), (66, {"w": 1}), (84, {"w": 1})]
    first, second = _emitted_reads(kind, aggregates, events, EmitAfterMaxEvent(3))
    moved = {"w": 1, "x_count_10m": 0.0, "x_max_10m": "<-inf>", "x_count_20m": 1.0, "x_max_20m": 1.0}
    assert first == moved
    assert second == {**moved, "x_max_10m": "<NaN>"}  # (as the reference reports it there)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value_at", [22, 52, 62, 82, 112])
@pytest.mark.parametrize("later", [11, 21, 31])
def test_fixed_windows_that_moved_on_unread_are_read_at_the_events_time_from_a_window_on(
    kind, value_at, later
):
    # as storey 1.0.6 (fixed 30m windows in 15m buckets, sums without min/max): a value not
    # emitted 2S buckets or more past the key's first one (S: the windows' least common multiple)
    # moves the windows on; the next emitted event without a value reads the windows holding its
    # own time when it is at least the shortest window's buckets past the latest one
    aggregates = [fa("x", "v", ["count"], ["30m"])]
    events = [(1, {"v": 1}), (value_at, {"v": 1}), (value_at + later, {"w": 1})]
    (body,) = _emitted_reads(kind, aggregates, events, EmitAfterMaxEvent(3))
    moved = value_at // 15 >= 4 and (value_at + later) // 15 - value_at // 15 >= 2
    read_at = value_at + later if moved else value_at
    assert body["x_count_30m"] == float(sum(1 for m in (1, value_at) if m // 30 == read_at // 30))


@pytest.mark.parametrize("kind", KINDS)
def test_fixed_windows_count_from_where_an_emitted_event_last_read_them(kind):
    # an emitted value in between: the windows move on only 2S buckets past where it read them
    aggregates = [fa("x", "v", ["avg"], ["20m", "1h"])]
    events = [
        (7, {"v": 2.5}),
        (32, {"v": 4}),
        (50, {"v": 4}),
        (62, {"v": -8}),
        (144, {"v": 4}),
        (184, {"w": 1}),
    ]
    first, second = _emitted_reads(kind, aggregates, events, EmitAfterMaxEvent(3))
    assert second == {"w": 1, "x_avg_20m": 4.0, "x_avg_1h": 4.0}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("first", [{"v": 1}, {"w": 1}])
def test_capped_sliding_windows_start_at_the_keys_first_event(kind, first):
    # as storey 1.0.6: the windows of a max_value aggregator start at the key's first event, with
    # the field or not; summed down to there, empty buckets make a capped sum the float 5.0 again
    aggregates = [fa("x", "w", ["sum"], ["1h"], "10m", max_value=5)]
    events = [(62, first), (76, {"w": 7}), (86, {"w": 6})]
    bodies = _emitted_reads(kind, aggregates, events, EmitAfterMaxEvent(1))
    sums = [b["x_sum_1h"] for b in bodies]
    if "w" in first:
        assert sums == [1.0, 5, 5] and [type(x) for x in sums] == [float, int, int]
    else:
        assert sums == [0.0, 5.0, 5.0] and all(type(x) is float for x in sums)


@pytest.mark.parametrize("kind", KINDS)
def test_naive_datetimes_are_utc(kind):
    # defect 5: the tests run with TZ=America/New_York; naive times are UTC nonetheless
    aggregates = [fa("x", "v", ["sum", "count"], ["1h"]), fa("s", "v", ["sum"], ["1h"], "10m")]
    naive = [
        ({"v": i}, "k", dt.datetime(2020, 7, 21, 23, 50) + dt.timedelta(minutes=7 * i)) for i in range(5)
    ]
    aware = [(b, k, t.replace(tzinfo=dt.UTC)) for b, k, t in naive]
    outs = []
    for events in (naive, aware):
        capture = Capture()
        run(kind, [AggregateByKey(aggregates, table()), capture], events)
        outs.append([e["body"] for e in capture.seen])
    assert outs[0] == outs[1]
    assert [b["x_count_1h"] for b in outs[0]] == [1.0, 2.0, 1.0, 2.0, 3.0]  # a new hour at 00:00 UTC


def test_invalid_config_case_types():
    case = load_case("agg_invalid_config")
    expected = case["expected"]
    # the reference's KeyError for unknown names is our ValueError (defect 3); the rest agree
    assert expected["unknown_aggregation"] == expected["seed_typo_sttdev"] == "KeyError"
    with pytest.raises(ValueError):
        SlidingWindows(["1x"], "1m")
    with pytest.raises(ValueError):
        FixedWindows([])
    with pytest.raises(ValueError):
        SlidingWindows(["1h"], "7m")
    assert (
        expected["bad_window_unit"]
        == expected["empty_windows"]
        == expected["period_not_divisor"]
        == "ValueError"
    )
    assert (
        expected["duplicate_names"]
        == expected["bad_emit_policy"]
        == expected["unknown_dict_mode"]
        == "TypeError"
    )


# ---------------------------------------------------------------- QueryByKey
@pytest.mark.parametrize("kind", KINDS)
def test_query_in_the_same_flow_reads_what_aggregate_wrote(kind):
    # defect 6: the reference's QueryByKey sees nothing of an in-memory table
    t = table()
    after_aggregate = Capture()
    after_query = Capture()
    steps = [
        AggregateByKey([fa("x", "v", ["sum", "count", "avg"], ["1h", "2h"], "10m")], t),
        after_aggregate,
        QueryByKey(["x_sum_1h", "x_avg_2h", "x_max_1h"], t, aliases={"x_sum_1h": "s"}),
        after_query,
    ]
    case = load_case("query_same_flow_after_aggregate")
    run(kind, steps, input_events(case))
    assert_matches(case["expected"]["after_aggregate"], after_aggregate.seen)
    for before, after in zip(after_aggregate.seen, after_query.seen, strict=True):
        body = before["body"]
        assert after["body"] == {**body, "s": body["x_sum_1h"]}


def test_query_sees_each_event_as_it_was_aggregated_whatever_the_batch():
    t = table()
    values = []
    steps = [
        SyncEmitSource(buffer_size=64),
        AggregateByKey([fa("x", "v", ["sum", "count"], ["1h"], "10m")], t),
        QueryByKey(["x_count_1h", "x_sum_1h"], t, aliases={"x_count_1h": "n", "x_sum_1h": "s"}),
        Reduce(None, lambda acc, body: values.append((body["n"], body["s"], body["x_count_1h"]))),
    ]
    controller = build_flow(steps).run()
    for i in range(40):
        controller.emit({"v": i}, key="k", event_time=T0 + dt.timedelta(minutes=i))
    controller.terminate()
    controller.await_termination()
    assert all(n == count for n, _, count in values)


@pytest.mark.parametrize("kind", KINDS)
def test_a_last_aggregate_step_keeps_the_features_a_second_flow_queries(kind):
    """A service that only keeps a table's features (AggregateByKey last in its flow, its events
    going nowhere) leaves the table as a flow that passes them on does."""
    rng = random.Random(5)
    events = [
        (
            {"v": rng.choice([rng.uniform(-3, 3), None])},
            f"k{rng.randrange(4)}",
            T0 + dt.timedelta(minutes=7 * i),
        )
        for i in range(120)
    ]
    aggregators = [
        fa("x", "v", ["sum", "count", "min", "last"], ["1h", "6h"], "10m"),
        FieldAggregator("f", "v", ["max", "count"], FixedWindows(["1h"])),
    ]
    queries = [({}, f"k{k}", T0 + dt.timedelta(minutes=7 * 120 + 5)) for k in range(5)]
    names = ["x_sum_1h", "x_count_6h", "x_min_6h", "x_last_1h", "f_max_1h", "f_count_1h"]
    found = []
    for tail in ([], [Reduce([], lambda acc, body: acc + [body])]):
        t = table()
        run(kind, [AggregateByKey(aggregators, t), *tail], events)
        found.append(run(kind, [QueryByKey(names, t), Reduce([], lambda acc, body: acc + [body])], queries))
    assert found[0] == found[1]
    assert len(found[0]) == 5 and found[0][0]["x_count_6h"] > 0


@pytest.mark.parametrize("kind", KINDS)
def test_query_in_a_second_flow(kind):
    case = load_case("query_second_flow_options")
    t = table()
    aggregated = Capture()
    run(
        kind,
        [AggregateByKey([fa("x", "v", ["sum", "count"], ["1h", "2h"])], t), aggregated],
        input_events(case, "events_flow1"),
    )
    assert_matches(case["expected"]["aggregated"], aggregated.seen)
    queried = Capture()
    query = QueryByKey(
        ["x_sum_1h", "x_count_2h", "name"],
        t,
        key="user",
        aliases={"x_sum_1h": "s1"},
        fixed_window_type=FixedWindowType.LastClosedWindow,
    )
    events = input_events(case, "events_flow2")
    run(kind, [query, queried], events)
    expected = case["expected"]["queried"]
    for (body, key, when), got, ref in zip(events, queried.seen, expected, strict=True):
        assert got["key"] == ref["key"] == key
        if "user" not in body:
            assert got["body"] is None and ref["body"] is None
            continue
        # the last closed fixed windows before the query time, from the first flow's events
        history = [
            (decode(e["body"])["v"], decode(e["time"]))
            for e in case["inputs"]["events_flow1"]
            if e["key"] == body["user"]
        ]

        def closed(length, at=when, history=history):
            end = at.replace(minute=0, second=0, microsecond=0)
            if length == 2:
                end = end.replace(hour=end.hour - end.hour % 2)
            return [v for v, t in history if end - dt.timedelta(hours=length) <= t < end]

        assert got["body"] == {**body, "s1": float(sum(closed(1))), "x_count_2h": float(len(closed(2)))}


@pytest.mark.parametrize("kind", KINDS)
def test_query_of_a_fresh_table(kind):
    case = load_case("query_fresh_table_list_key")
    capture = Capture()
    query = QueryByKey(
        ["f_sum_1h", "f_max_2h"], table(), key=["a", "b"], fixed_window_type=FixedWindowType.CurrentOpenWindow
    )
    run(kind, [query, capture], input_events(case))
    assert_matches(case["expected"]["events"], capture.seen)


def test_query_features_of_static_attributes_and_virtual_aggregations():
    t = table()
    capture = Capture()
    steps = [
        NoSqlTarget(t, columns=["name"]),
        AggregateByKey([fa("x", "v", ["sum", "count", "sqr"], ["1h"], "10m")], t),
        QueryByKey(["x_avg_1h", "x_stddev_1h", "name", "x_min_1h"], t),
        capture,
    ]
    run("sync", steps, [({"v": 1, "name": "ann"}, "k", T0), ({"v": 3}, "k", T0 + dt.timedelta(minutes=1))])
    last = capture.seen[-1]["body"]
    assert last["x_avg_1h"] == 2.0 and math.isclose(last["x_stddev_1h"], math.sqrt(2), rel_tol=1e-8)
    assert last["name"] == "ann" and "x_min_1h" not in last


def test_query_times_before_after_and_unknown_keys():
    t = table()
    run("sync", [AggregateByKey([fa("x", "v", ["sum", "count"], ["1h"], "10m")], t)], [({"v": 5}, "k", T0)])
    capture = Capture()
    events = [
        ({"q": 1}, "k", T0 + dt.timedelta(minutes=30)),  # within the window
        ({"q": 2}, "k", T0 + dt.timedelta(hours=3)),  # the window has moved past the data
        ({"q": 3}, "k", T0 - dt.timedelta(hours=3)),  # older than every kept bucket
        ({"q": 4}, "other", T0),  # a key the table does not hold
    ]
    run("sync", [QueryByKey(["x_sum_1h", "x_count_1h"], t), capture], events)
    assert [e["body"] for e in capture.seen] == [
        {"q": 1, "x_sum_1h": 5.0, "x_count_1h": 1.0},
        {"q": 2, "x_sum_1h": 0.0, "x_count_1h": 0.0},
        {"q": 3},
        {"q": 4},
    ]


def test_query_bad_parameters():
    with pytest.raises(TypeError, match="features"):
        QueryByKey("x_sum_1h", table())
    with pytest.raises(TypeError, match="fixed_window_type"):
        QueryByKey(["x_sum_1h"], table(), fixed_window_type="last")


# ---------------------------------------------------------------- bulk == live
def _random_frame(n=3000, keys=40, seed=11):
    rng = random.Random(seed)
    t = pd.Timestamp("2021-03-01T00:00:00Z")
    rows = []
    for _ in range(n):
        t += pd.Timedelta(seconds=rng.randint(0, 240))
        amount = rng.choice([rng.randint(-50, 50), round(rng.uniform(-50, 50), 3), math.nan])
        rows.append({"user": f"u{rng.randrange(keys)}", "when": t, "amount": amount, "n": rng.randint(0, 5)})
    return pd.DataFrame(rows)


def _bulk_aggregates():
    return [
        fa(
            "a",
            "amount",
            ["sum", "count", "avg", "min", "max", "first", "last", "stddev"],
            ["1h", "6h", "1d"],
            "10m",
        ),
        fa("f", "amount", ["sum", "max", "sqr"], ["30m", "2h"]),
        fa("g", "n", ["sum", "count"], ["1h", "1d"]),
    ]


def _features(bodies):
    return [{k: v for k, v in body.items() if k[:2] in ("a_", "f_", "g_")} for body in bodies]


def _live_features(df, kind="sync"):
    events = [
        ({"user": r.user, "amount": r.amount, "n": r.n}, r.user, r.when.to_pydatetime())
        for r in df.itertuples()
    ]
    result = run(
        kind, [AggregateByKey(_bulk_aggregates(), table()), Reduce([], lambda acc, b: acc + [b])], events
    )
    return _features(result)


def _same_features(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for name in x:
            assert x[name] == y[name] or (math.isnan(x[name]) and math.isnan(y[name])), name


def test_bulk_equals_live_dataframe_source():
    df = _random_frame()
    log = BatchLog()
    events, _ = run_replay(
        DataframeSource(df, key_field="user", time_field="when"),
        AggregateByKey(_bulk_aggregates(), table()),
        log,
    )
    assert log.columnar == [True], "a columnar batch stays columnar through AggregateByKey"
    assert log.sizes == [len(df)]
    _same_features(_features([e.body for e in events]), _live_features(df))


def test_bulk_equals_live_parquet_source(tmp_path):
    df = _random_frame(n=2500, seed=5)
    path = tmp_path / "events.parquet"
    df.to_parquet(path)
    events, _ = run_replay(
        ParquetSource(str(path), key_field="user", time_field="when"),
        AggregateByKey(_bulk_aggregates(), table()),
    )
    _same_features(_features([e.body for e in events]), _live_features(df, kind="async"))


def test_keys_read_from_files_and_emitted_share_their_state(tmp_path, monkeypatch):
    # keys a Parquet source hands as Arrow strings are looked up without Python objects; the same
    # keys emitted as Python objects, or keys of other types, must find the same state
    import storey.sources.file_sources.parquet_source as parquet_source

    monkeypatch.setattr(parquet_source, "BATCH_ROWS", 64)
    df = _random_frame(n=900, keys=60, seed=8)
    first, middle, last = df.iloc[:300], df.iloc[300:500], df.iloc[500:]
    for name, part in (("first", first), ("last", last)):
        part.to_parquet(tmp_path / f"{name}.parquet")
    t = table()
    before, _ = run_replay(
        ParquetSource(str(tmp_path / "first.parquet"), key_field="user", time_field="when"),
        AggregateByKey(_bulk_aggregates(), t),
    )
    live = [
        ({"user": r.user, "amount": r.amount, "n": r.n}, r.user, r.when.to_pydatetime())
        for r in middle.itertuples()
    ]
    live.insert(50, ({"amount": 1.0, "n": 1}, 7, middle["when"].iloc[50].to_pydatetime()))
    between = run("sync", [AggregateByKey(_bulk_aggregates(), t), Reduce([], lambda acc, b: acc + [b])], live)
    after, _ = run_replay(
        ParquetSource(str(tmp_path / "last.parquet"), key_field="user", time_field="when"),
        AggregateByKey(_bulk_aggregates(), t),
    )
    assert len(before) == 300 and len(after) == 400
    del between[50]  # the int key's event
    together = _features([e.body for e in before]) + _features(between) + _features([e.body for e in after])
    _same_features(together, _live_features(df))


def test_live_and_batches_of_any_size_agree():
    df = _random_frame(n=600, seed=2)
    one_at_a_time = _live_features(df)
    t = table()
    controller = build_flow(
        [
            SyncEmitSource(buffer_size=100),
            AggregateByKey(_bulk_aggregates(), t),
            Reduce([], lambda acc, b: acc + [b]),
        ]
    ).run()
    for r in df.itertuples():
        controller.emit(
            {"user": r.user, "amount": r.amount, "n": r.n}, key=r.user, event_time=r.when.to_pydatetime()
        )
    controller.terminate()
    _same_features(_features(controller.await_termination()), one_at_a_time)


def test_emitted_features_of_events_left_out_by_a_filter_agree_in_bulk_and_live(monkeypatch):
    # EmitAfterMaxEvent with aggr_filter: which events are emitted, and so where the windows are
    # read for an event left out, carries over from batch to batch (as the reference, per event)
    from storey.sources.file_sources import dataframe_source

    monkeypatch.setattr(dataframe_source, "BATCH_ROWS", 7)
    df = _random_frame(n=400, keys=6, seed=5)
    aggregates = [
        fa(
            "a",
            "amount",
            ["sum", "count", "min", "max"],
            ["30m", "2h"],
            "10m",
            aggr_filter=lambda b: b["n"] > 1,
        ),
        fa("g", "n", ["sum", "count"], ["1h"], "10m", aggr_filter=lambda b: b["n"] != 3),
    ]

    def emitted(source, events=None):
        steps = [source, AggregateByKey(aggregates, table(), emit_policy=EmitAfterMaxEvent(3))]
        controller = build_flow([*steps, Reduce([], lambda acc, b: acc + [b])]).run()
        for body, key, when in events or []:
            controller.emit(body, key=key, event_time=when)
        if events is not None:
            controller.terminate()
        return _features(controller.await_termination())

    bulk = emitted(DataframeSource(df, key_field="user", time_field="when"))
    rows = [
        ({"user": r.user, "amount": r.amount, "n": r.n}, r.user, r.when.to_pydatetime())
        for r in df.itertuples()
    ]
    assert len(bulk) == sum(c // 3 for c in df["user"].value_counts())
    _same_features(bulk, emitted(SyncEmitSource(), rows))


# ---------------------------------------------------------------- emission, outputs, errors
@pytest.mark.parametrize("kind", KINDS)
def test_full_event_steps_see_events(kind):
    seen = Capture()
    steps = [AggregateByKey([fa("x", "v", ["sum"], ["1h"], "10m")], table(), full_event=True), seen]
    run(kind, steps, [({"v": 1}, "k", T0), ({"v": 2}, "k", T0)])
    assert [e["body"]["x_sum_1h"] for e in seen.seen] == [1.0, 3.0]


def test_body_fields_win_over_features_and_the_original_body_is_kept():
    body = {"v": 1, "x_sum_1h": "mine"}
    result = run(
        "sync",
        [
            AggregateByKey([fa("x", "v", ["sum", "count"], ["1h"], "10m")], table()),
            Reduce([], lambda a, b: a + [b]),
        ],
        [(body, "k", T0)],
    )
    assert result == [{"x_sum_1h": "mine", "x_count_1h": 1.0, "v": 1}]
    assert body == {"v": 1, "x_sum_1h": "mine"}


def test_columns_with_missing_and_absent_values():
    df = pd.DataFrame(
        {
            "k": ["a", "a", "b", "a"],
            "v": [1.0, math.nan, 2.0, 4.0],
            "w": pd.array([1, None, 3, None], dtype="Int64"),
        }
    )
    df["t"] = pd.Timestamp("2021-01-01T00:00:00Z") + pd.to_timedelta(np.arange(4), unit="min")
    step = AggregateByKey(
        [fa("v", "v", ["sum", "count"], ["1h"], "10m"), fa("w", "w", ["sum", "count"], ["1h"], "10m")],
        table(),
    )
    events, _ = run_replay(DataframeSource(df, key_field="k", time_field="t"), step)
    counts = [(e.body["v_count_1h"], e.body["w_count_1h"], e.body["w_sum_1h"]) for e in events]
    assert counts == [(1.0, 1.0, 1.0), (2.0, 1.0, 1.0), (1.0, 1.0, 3.0), (3.0, 1.0, 1.0)]
    assert math.isnan(events[1].body["v_sum_1h"])


@pytest.mark.parametrize("kind", KINDS)
def test_values_that_are_not_numbers_fail_the_flow(kind):
    step = AggregateByKey([fa("x", "v", ["sum"], ["1h"], "10m")], table(), name="agg")
    with pytest.raises(TypeError, match="'3'") as info:
        run(kind, [step], [({"v": 1}, "k", T0), ({"v": "3"}, "k", T0)])
    assert "agg" in str(info.value) + "".join(getattr(info.value.__cause__, "__notes__", []))


def test_bodies_that_are_not_dicts_fail_the_flow():
    with pytest.raises(TypeError, match="dict"):
        run("sync", [AggregateByKey([fa("x", "v", ["sum"], ["1h"], "10m")], table())], [([1, 2], "k", T0)])


def test_keys_lists_and_missing_key_fields():
    result = run(
        "sync",
        [
            AggregateByKey([fa("x", "v", ["sum"], ["1h"], "10m")], table(), key=["a", "b"]),
            Reduce([], lambda acc, e: acc + [(e.key, e.body["x_sum_1h"])], full_event=True),
        ],
        [
            ({"v": 1, "a": 1, "b": 2}, "k", T0),
            ({"v": 2, "a": 1}, "k", T0),
            ({"v": 4, "a": 1, "b": 2}, "k", T0),
        ],
    )
    assert result == [([1, 2], 1.0), ([1, None], 2.0), ([1, 2], 5.0)]
    # like the reference, a list key is the same key as its items joined with '.'
    result = run(
        "sync",
        [
            AggregateByKey([fa("x", "v", ["sum"], ["1h"], "10m")], table()),
            Reduce([], lambda acc, b: acc + [b["x_sum_1h"]]),
        ],
        [({"v": 1}, ["a", "b"], T0), ({"v": 2}, "a.b", T0), ({"v": 4}, ("a", "b"), T0)],
    )
    assert result == [1.0, 3.0, 4.0]
    result = run(
        "sync",
        [
            AggregateByKey([fa("x", "v", ["sum"], ["1h"], "10m")], table(), key="user"),
            Reduce([], lambda acc, e: acc + [e.key], full_event=True),
        ],
        [({"v": 1}, "k", T0)],
    )
    assert result == [None]


def test_emit_after_max_event_timeout():
    step = AggregateByKey(
        [fa("x", "v", ["sum", "count"], ["1h"], "10m")],
        table(),
        emit_policy=EmitAfterMaxEvent(3, timeout_secs=0.3),
    )
    seen = []
    controller = build_flow([SyncEmitSource(), step, Map(lambda b: seen.append(dict(b)) or b)]).run()
    controller.emit({"v": 1}, "a", T0)
    controller.emit({"v": 2}, "a", T0)
    controller.emit({"v": 5}, "b", T0)
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    controller.emit({"v": 3}, "a", T0)  # the count started over at the timeout
    controller.terminate()
    controller.await_termination()
    assert sorted(seen, key=lambda b: b["v"]) == [
        {"x_sum_1h": 3.0, "x_count_1h": 2.0, "v": 2},
        {"x_sum_1h": 5.0, "x_count_1h": 1.0, "v": 5},
    ]


def test_awaited_results_through_complete():
    controller = build_flow(
        [SyncEmitSource(), AggregateByKey([fa("x", "v", ["sum"], ["1h"], "10m")], table()), Complete()]
    ).run()
    results = [controller.emit({"v": i}, "k", T0).await_result()["x_sum_1h"] for i in range(4)]
    controller.terminate()
    controller.await_termination()
    assert results == [0.0, 1.0, 3.0, 6.0]


def test_async_source_awaits_features():
    async def main():
        controller = build_flow(
            [AsyncEmitSource(), AggregateByKey([fa("x", "v", ["max"], ["1h"], "10m")], table()), Complete()]
        ).run()
        results = [await controller.emit({"v": v}, "k", T0) for v in (3, 1, 7)]
        await controller.terminate()
        await controller.await_termination()
        return results

    assert [r["x_max_1h"] for r in asyncio.run(main())] == [3.0, 3.0, 7.0]


def test_use_windows_from_schema():
    t = table()
    run("sync", [AggregateByKey([fa("x", "v", ["sum"], ["2h"], "10m")], t)], [({"v": 1}, "k", T0)])
    step = AggregateByKey([fa("x", "v", ["sum"], ["1h"], "10m")], t, use_windows_from_schema=True)
    result = run(
        "sync", [step, Reduce([], lambda acc, b: acc + [b])], [({"v": 2}, "k", T0 + dt.timedelta(minutes=70))]
    )
    assert result == [{"x_sum_2h": 3.0, "v": 2}]


def test_a_later_flow_over_part_of_the_aggregators_still_aggregates_all_of_them():
    # as in the reference: a step aggregates into every aggregator its table holds
    t = table()
    both = [fa("x", "v", ["sum"], ["1h"], "10m"), fa("y", "v", ["max", "count"], ["1h"], "10m")]
    run("sync", [AggregateByKey(both, t)], [({"v": 1}, "k", T0), ({"v": 5}, "k", T0)])
    result = run(
        "sync",
        [
            AggregateByKey([fa("y", "v", ["max", "count"], ["1h"], "10m")], t),
            Reduce([], lambda acc, b: acc + [b]),
        ],
        [({"v": 3}, "k", T0 + dt.timedelta(minutes=5)), ({"v": 9}, "k", T0 - dt.timedelta(hours=5))],
    )
    assert result == [{"x_sum_1h": 9.0, "y_max_1h": 5.0, "y_count_1h": 3.0, "v": 3}, {"v": 9}]


def test_an_aggregator_registered_again_is_aggregated_once_per_step():
    # storey aggregates it once per registration for the keys it meets after the second one
    t = table()
    for minutes in (0, 1):
        result = run(
            "sync",
            [
                AggregateByKey([fa("c", "v", ["count"], ["1h"], "10m")], t),
                Reduce([], lambda acc, b: acc + [b]),
            ],
            [({"v": 1}, f"key{minutes}", T0 + dt.timedelta(minutes=minutes))],
        )
        assert result == [{"c_count_1h": 1.0, "v": 1}]


def test_a_dict_emit_policy_is_left_as_given():
    policy = {"mode": "maxEvents", "maxEvents": 2}
    AggregateByKey([fa("c", "v", ["count"], ["1h"])], table(), emit_policy=policy)
    assert policy == {"mode": "maxEvents", "maxEvents": 2}


def test_wall_clock_policy_emits_each_touched_key_with_its_features():
    from storey.dtypes import EmitAfterDelay

    step = AggregateByKey(
        [fa("x", "v", ["sum", "count"], ["1h"], "10m")], table(), emit_policy=EmitAfterDelay(0.2)
    )
    seen = []
    controller = build_flow([SyncEmitSource(), step, Map(lambda b: seen.append(b) or b)]).run()
    controller.emit({"v": 1}, "a", T0)
    controller.emit({"v": 2}, "a", T0 + dt.timedelta(minutes=1))
    controller.emit({"v": 5}, "b", T0)
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    controller.terminate()
    controller.await_termination()
    assert sorted((b["key"], b["x_sum_1h"], b["x_count_1h"]) for b in seen) == [
        ("a", 3.0, 2.0),
        ("b", 5.0, 1.0),
    ]
    assert all(isinstance(b["time"], dt.datetime) for b in seen)


def test_a_failing_key_function_fails_the_flow_naming_the_step():
    step = AggregateByKey(
        [fa("x", "v", ["sum"], ["1h"], "10m")], table(), key=lambda body: body["user"], name="agg"
    )
    with pytest.raises(KeyError) as info:
        run("sync", [step], [({"v": 1}, "k", T0)])
    notes = getattr(info.value, "__notes__", []) + getattr(info.value.__cause__, "__notes__", [])
    assert any("agg" in note for note in notes)


def test_one_compiled_signature_per_kernel_whatever_the_aggregators(tmp_path):
    # Numba compiles a kernel again for every new argument type (read-only, strided or unaligned
    # arrays are other types): whatever the source, every kernel keeps the one compiled version
    from storey.kernels import kernels

    def steps():
        shared = table()
        return [
            [AggregateByKey([fa("a", "v", ["sum"], ["1h"], "10m")], table())],
            [
                AggregateByKey(
                    [fa("b", "v", ALL, ["2h", "5h"], "1h"), fa("c", "v", ["max"], ["1d"])], shared
                ),
                QueryByKey(["b_sum_2h", "c_max_1d"], shared),
                QueryByKey(["c_max_1d"], shared, fixed_window_type=FixedWindowType.LastClosedWindow),
            ],
            [
                AggregateByKey(
                    [
                        fa("d", "v", ["count", "last"], ["15m", "1h"]),
                        fa("e", "v", ["sum"], ["1h"], "10m", max_value=3),
                    ],
                    table(),
                )
            ],
        ]

    df = _random_frame(n=20_000, seed=4).rename(columns={"amount": "v"})
    parquet = tmp_path / "events.parquet"
    df.to_parquet(parquet)
    csv = tmp_path / "events.csv"
    df.to_csv(csv, index=False)
    # a frame whose time column is a strided view (every other row of a bigger block)
    strided = pd.concat([df, df]).sort_index(kind="stable").iloc[::2]
    sources = [
        lambda: DataframeSource(df, key_field="user", time_field="when"),
        lambda: DataframeSource(strided, key_field="user", time_field="when"),
        # Arrow hands read-only columns
        lambda: ParquetSource(str(parquet), key_field="user", time_field="when"),
        lambda: CSVSource(str(csv), header=True, build_dict=True, key_field="user", time_field="when"),
    ]
    for source in sources:
        for chain in steps():
            run_replay(source(), *chain)
    for chain in steps():
        run("sync", chain, [({"v": 1}, "k", T0)])
    k = kernels()
    assert len(k.sliding.signatures) == 1
    assert len(k.fixed.signatures) == 1


def test_columns_read_from_parquet_stay_arrow_arrays_beside_the_features(tmp_path):
    from storey.targets.file_targets.values import source_arrow_column

    df = _random_frame(n=500, seed=9)
    path = tmp_path / "events.parquet"
    df.to_parquet(path)
    seen = []

    class Look(Capture):
        _takes_batches = True  # its _do takes EventBatches

        async def _do(self, batch):
            columns = batch.columns
            seen.append((source_arrow_column(columns, "user"), source_arrow_column(columns, "a_sum_1h")))
            await self._emit(batch)

    events, _ = run_replay(
        ParquetSource(str(path), key_field="user", time_field="when"),
        AggregateByKey(_bulk_aggregates(), table()),
        Look(),
    )
    user, feature = seen[0]
    assert user is not None and user.to_pylist()[:3] == df["user"].tolist()[:3]
    assert feature is None  # a feature is a NumPy column, not one the file held
    assert [e.body["a_count_1d"] for e in events][:2] == [1.0, 1.0 + (df["user"][1] == df["user"][0])]


@pytest.mark.parametrize("kind", KINDS)
def test_window_sums_added_in_the_references_order(kind):
    # storey 1.0.6 keeps a running sum per window, but once a bucket holding a window's max leaves
    # it adds every window up again from its buckets, newest first; near-equal values make the
    # order show in stddev far beyond rounding
    v0, v1, v2 = 1000000.9, 1000000.4, 1000000.2

    def stddev(s, q, n=3):
        return math.sqrt(max((n * q - s * s) / (n * (n - 1)), 0.0))

    def last_features(aggregations):
        steps = [
            AggregateByKey([fa("x", "v", aggregations, ["20m", "40m"], "10m")], table()),
            Reduce([], lambda acc, x: acc + [x]),
        ]
        events = [({"v": v}, "k", T0 + dt.timedelta(minutes=10 * i)) for i, v in enumerate((v0, v1, v2))]
        return run(kind, steps, events)[-1]

    running = ((v0 + v1) + v2, (v0 * v0 + v1 * v1) + v2 * v2)
    newest_first = ((v2 + v1) + v0, (v2 * v2 + v1 * v1) + v0 * v0)
    assert stddev(*running) != pytest.approx(stddev(*newest_first), rel=1e-6)
    # no max: the 40m window's sums run on (nothing left it)
    assert last_features(["sum", "stddev"])["x_stddev_40m"] == stddev(*running)
    # the 20m window loses the bucket holding its max (v0): every window is added up again
    with_max = last_features(["sum", "max", "stddev"])
    assert (with_max["x_sum_40m"], with_max["x_stddev_40m"]) == (newest_first[0], stddev(*newest_first))
