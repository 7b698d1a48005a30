"""Window aggregation as storey 1.0.6's users meet it, run the same way on the reference and on
this project.

Each scenario is a function `(inputs) -> output` using only storey's public names, so that it runs
under either implementation. The reference's outputs are recorded in
tests/data/compat_aggregation/<name>.json with the inputs they were recorded for (by running this
module's scenarios under the reference's interpreter, `tests` importable and this project's
`storey` not); `tests/test_aggregation_compat.py` runs every scenario here and compares.
"""

import datetime as dt
import math

import pandas as pd

from storey import (
    AggregateByKey,
    DataframeSource,
    FieldAggregator,
    Map,
    NoopDriver,
    ReduceToDataFrame,
    SyncEmitSource,
    Table,
    build_flow,
)
from storey.dtypes import EmitAfterMaxEvent, FixedWindows, SlidingWindows
from tests.support.conformance import decode
from tests.support.scenario_registry import T0, collect, raised, registry

SCENARIOS, scenario = registry()


def _events(rows):
    """(body, key, time) of [body, key, minutes after T0] rows; 'NaN' values become math.nan."""
    out = []
    for body, key, minutes in rows:
        body = {k: math.nan if v == "NaN" else v for k, v in decode(body).items()}
        out.append((body, key, T0 + dt.timedelta(minutes=minutes)))
    return out


def _run(steps, events):
    """Runs `build_flow([SyncEmitSource(), *steps])` over (body, key, time) events."""
    controller = build_flow([SyncEmitSource(), *steps]).run()
    for body, key, when in events:
        controller.emit(body, key=key, event_time=when)
    controller.terminate()
    return controller.await_termination()


def _replay(source, steps):
    """Runs `build_flow([source, *steps])` to its end (a source that reads data)."""
    return build_flow([source, *steps]).run().await_termination()


def _windows(spec):
    """SlidingWindows or FixedWindows of a spec {'windows': [...], 'period': ... (sliding)}."""
    if "period" in spec:
        return SlidingWindows(spec["windows"], spec["period"])
    return FixedWindows(spec["windows"])


def _aggregator(spec):
    return FieldAggregator(spec["name"], spec["field"], spec["aggr"], _windows(spec))


# ---- count of a field of any type


@scenario(
    {
        "events": [
            [{"activity": "login"}, "u1", 0],
            [{"activity": "click", "n": 2}, "u1", 5],
            [{"n": 1}, "u1", 6],
            [{"activity": None}, "u1", 7],
            [{"activity": ["x", "y"]}, "u2", 8],
            [{"activity": "logout"}, "u1", 70],
        ],
        "frame": {
            "user": ["u1", "u1", "u2", "u1"],
            "activity": ["a", None, "b", "c"],
            "minutes": [0, 1, 2, 65],
        },
    }
)
def count_of_a_text_field(inputs):
    """FieldAggregator('activities', 'activity', ['count'], ...) over a text field, as storey's
    README counts one: every event that has the field counts, whatever its value's type (missing
    and None do not); from dict bodies (sliding and fixed windows) and from a DataFrame's text
    column. Any other aggregation of text fails (the exception type is recorded)."""
    events = _events(inputs["events"])

    def counted(windows, aggr=("count",)):
        step = AggregateByKey(
            [FieldAggregator("activities", "activity", list(aggr), windows)], Table("t", NoopDriver())
        )
        return _run([step, collect()], events)

    frame = pd.DataFrame(inputs["frame"])
    frame["time"] = [T0 + dt.timedelta(minutes=m) for m in frame.pop("minutes")]
    from_frame = _replay(
        DataframeSource(frame, key_field="user", time_field="time"),
        [
            AggregateByKey(
                [FieldAggregator("activities", "activity", ["count"], SlidingWindows(["1h"], "10m"))],
                Table("t", NoopDriver()),
            ),
            collect(),
        ],
    )
    errors = {
        " ".join(aggr): raised(lambda aggr=aggr: counted(SlidingWindows(["1h"], "10m"), aggr))
        for aggr in (["sum"], ["count", "sum"], ["min"], ["max"], ["avg"], ["first"], ["count", "last"])
    }
    return {
        "sliding": counted(SlidingWindows(["1h", "2h"], "10m")),
        "fixed": counted(FixedWindows(["1h", "2h"])),
        "dataframe": [{k: v for k, v in body.items() if k != "time"} for body in from_frame],
        "errors": errors,
    }


# ---- several AggregateByKey steps on one Table


@scenario(
    {
        "events": [
            [{"x": 1, "y": 10}, "k", 0],
            [{"x": 2, "y": 20}, "k", 7],
            [{"x": 3}, "j", 14],
            [{"y": 5}, "k", 21],
            [{"x": 4, "y": 1}, "k", 75],
        ]
    }
)
def two_steps_on_one_table(inputs):
    """AggregateByKey(a: sliding sum/count of x) -> AggregateByKey(b: fixed max/count of y) on one
    Table: each step feeds every event into every aggregation the table holds, so the events
    between the steps already have both steps' features, and after the second step each event has
    been aggregated twice (its body's features, from the first step, win over the second's)."""
    table = Table("t", NoopDriver())
    between = []
    first = AggregateByKey(
        [FieldAggregator("a", "x", ["sum", "count"], SlidingWindows(["1h"], "10m"))], table
    )
    second = AggregateByKey([FieldAggregator("b", "y", ["max", "count"], FixedWindows(["1h"]))], table)
    out = _run(
        [first, Map(lambda body: between.append(dict(body)) or body), second, collect()],
        _events(inputs["events"]),
    )
    return {"between": between, "after": out}


# ---- dict forms


@scenario(
    {
        "events": [
            [{"kind": "click", "n": 1}, "k", 0],
            [{"kind": "view", "n": 4}, "k", 5],
            [{"kind": "click", "n": 7}, "k", 20],
            [{"kind": "click", "n": 2}, "j", 21],
            [{"kind": "view"}, "k", 30],
            [{"kind": "click", "n": 3}, "k", 95],
            [{"kind": "click", "n": 1}, "k", 96],
        ]
    }
)
def dict_aggregates_and_emit_policies(inputs):
    """Aggregates in dict form with every key the reference reads: 'period' (sliding windows; None
    for the default period; without it, fixed windows), 'aggregation_filter', 'max_value'; emit
    policies in dict form: {'mode': 'maxEvents', 'maxEvents': 3} emits every third event of a key,
    {'mode': 'everyEvent'} every event, and an unknown mode fails (the exception type is recorded)."""
    events = _events(inputs["events"])
    aggregates = [
        {
            "name": "clicks",
            "column": "n",
            "operations": ["sum", "count"],
            "windows": ["1h", "2h"],
            "period": "10m",
            "aggregation_filter": lambda body: body["kind"] == "click",
        },
        {"name": "capped", "column": "n", "operations": ["sum", "max"], "windows": ["1h"], "max_value": 5},
        {"name": "default_period", "column": "n", "operations": ["count"], "windows": ["1h"], "period": None},
    ]

    def run(policy, aggregates=aggregates):
        step = AggregateByKey(aggregates, Table("t", NoopDriver()), emit_policy=policy)
        return _run([step, collect()], events)

    counted = [
        {"name": "c", "column": "n", "operations": ["count", "sum"], "windows": ["1h"], "period": "10m"}
    ]
    return {
        "aggregates": run({"mode": "everyEvent"}),
        "max_events": run({"mode": "maxEvents", "maxEvents": 3}, counted),
        "same_as_object": run({"mode": "maxEvents", "maxEvents": 3}, counted)
        == run(EmitAfterMaxEvent(3), counted),
        "unknown_mode": raised(lambda: run({"mode": "maxEvent", "maxEvents": 3}, counted)),
    }


# ---- fixed windows


@scenario(
    {
        "cases": [
            {
                "what": "a late event's count leaves with its bucket when a later event steps past the ring",
                "aggregator": {"name": "a", "field": "v", "aggr": ["count"], "windows": ["2s", "20s"]},
                "events": [
                    ["k0", "2020-07-21T21:40:00+00:00", 0],
                    ["k0", "2020-07-21T21:40:00.348000+00:00", 0],
                    ["k1", "2020-07-21T21:40:04+00:00", "NaN"],
                    ["k1", "2020-07-21T21:40:02.999000+00:00", 0],
                    ["k0", "2020-07-21T21:40:02.999000+00:00", 0],
                    ["k1", "2020-07-21T21:40:43+00:00", 0],
                ],
            },
            {
                "what": "2h and 3h windows: a NaN stays in the running sums over the next 6h cycle, "
                "and leaves them two cycles on",
                "aggregator": {"name": "a", "field": "v", "aggr": ["sum", "count"], "windows": ["2h", "3h"]},
                "events": [
                    ["k", "2020-07-21T01:00:00+00:00", 1.5],
                    ["k", "2020-07-21T05:10:00+00:00", "NaN"],
                    ["k", "2020-07-21T05:50:00+00:00", 2],
                    ["k", "2020-07-21T08:20:00+00:00", 3],
                    ["k", "2020-07-21T13:10:00+00:00", 4],
                    ["k", "2020-07-21T18:30:00+00:00", 5],
                    ["k", "2020-07-22T01:00:00+00:00", 6],
                    ["k", "2020-07-22T02:00:00+00:00", 7],
                ],
            },
            {
                "what": "10m and 15m windows (a 30m cycle): sums over cycles, a gap of one cycle and of two",
                "aggregator": {
                    "name": "a",
                    "field": "v",
                    "aggr": ["sum", "count"],
                    "windows": ["10m", "15m"],
                },
                "events": [
                    ["k", "2020-07-21T21:01:00+00:00", "NaN"],
                    ["k", "2020-07-21T21:12:00+00:00", 1],
                    ["k", "2020-07-21T21:29:00+00:00", 2],
                    ["k", "2020-07-21T21:44:00+00:00", 3],
                    ["k", "2020-07-21T22:05:00+00:00", 4],
                    ["k", "2020-07-21T22:31:00+00:00", 5],
                    ["k", "2020-07-21T23:58:00+00:00", 6],
                ],
            },
            {
                "what": "an event before the latest event's cycle is too late: no features, nothing changes",
                "aggregator": {"name": "a", "field": "v", "aggr": ["count", "sum"], "windows": ["1h"]},
                "events": [
                    ["k", "2020-07-21T10:30:00+00:00", 1],
                    ["k", "2020-07-21T09:10:00+00:00", 2],
                    ["k", "2020-07-21T10:40:00+00:00", 3],
                ],
            },
            {
                "what": "the same with 2h and 3h windows: a 6h cycle",
                "aggregator": {"name": "a", "field": "v", "aggr": ["count", "sum"], "windows": ["2h", "3h"]},
                "events": [
                    ["k", "2020-07-21T07:00:00+00:00", 1],
                    ["k", "2020-07-21T05:30:00+00:00", 2],
                    ["k", "2020-07-21T08:30:00+00:00", 3],
                ],
            },
        ]
    }
)
def fixed_windows_of_uncommon_lengths(inputs):
    """Fixed windows, some whose least common multiple (the cycle all windows start again at) is
    longer than the largest window (2h and 3h: 6h): each case's aggregator over its events (key, ISO
    time, value; 'NaN' for NaN), one AggregateByKey step per case. A late event (before its key's
    latest time) is recorded by whether it got features: what it gets is where this storey
    deliberately differs (README, "Late events"); the events after it are recorded whole."""
    out = {}
    for case in inputs["cases"]:
        events = [
            ({"v": math.nan if v == "NaN" else v}, key, dt.datetime.fromisoformat(when))
            for key, when, v in case["events"]
        ]
        step = AggregateByKey([_aggregator(case["aggregator"])], Table("t", NoopDriver()))
        latest = {}
        recorded = []
        for (_, key, when), body in zip(events, _run([step, collect()], events)):
            if key in latest and when < latest[key]:
                body = {"late, with features": any(name.startswith("a_") for name in body)}
            latest[key] = max(latest.get(key, when), when)
            recorded.append(body)
        out[case["what"]] = recorded
    return out


# ---- sparse events


@scenario(
    {
        "events": [
            [{"x": 1}, "k", 0],
            [{"x": 2}, "k", 7],
            [{"y": 3}, "k", 14],
            [{}, "k", 21],
            [{"x": 4}, "k", 28],
            [{"y": 5}, "j", 30],
        ]
    }
)
def sparse_fields_of_two_aggregators(inputs):
    """Two aggregators on different fields of sparse events (sliding and fixed windows): the one
    without data has NaN min/max/avg (and stddev/stdvar below two values) and 0 sum/count. NaN
    features are the `math.nan` object itself, so two runs' result lists compare equal, and so
    does a list written with math.nan."""
    events = _events(inputs["events"])
    all_aggregations = ["sum", "count", "min", "max", "avg", "first", "last", "stddev", "sqr", "stdvar"]

    def run(windows):
        step = AggregateByKey(
            [
                FieldAggregator("a", "x", all_aggregations, windows()),
                FieldAggregator("b", "y", ["sum", "count", "min", "max", "avg"], windows()),
            ],
            Table("t", NoopDriver()),
        )
        return _run([step, collect()], events)

    out = {}
    for name, windows in (
        ("sliding", lambda: SlidingWindows(["1h", "2h"], "10m")),
        ("fixed", lambda: FixedWindows(["1h", "2h"])),
    ):
        result = run(windows)
        out[name] = result
        out[f"{name}_runs_compare_equal"] = result == run(windows)
        out[f"{name}_nan_is_math_nan"] = all(
            v is math.nan for body in result for v in body.values() if isinstance(v, float) and v != v
        )
    out["written_with_math_nan"] = run(lambda: FixedWindows(["1h"]))[0] == {
        "a_sum_1h": 1.0,
        "a_count_1h": 1.0,
        "a_min_1h": 1.0,
        "a_max_1h": 1.0,
        "a_avg_1h": 1.0,
        "a_first_1h": 1.0,
        "a_last_1h": 1.0,
        "a_stddev_1h": math.nan,
        "a_sqr_1h": 1.0,
        "a_stdvar_1h": math.nan,
        "b_sum_1h": 0.0,
        "b_count_1h": 0.0,
        "b_min_1h": math.nan,
        "b_max_1h": math.nan,
        "b_avg_1h": math.nan,
        "x": 1,
    }
    return out


# ---- a feature store's ingestion


@scenario(
    {
        "frame": {
            "patient": ["p1", "p1", "p2", "p1", "p2", "p1"],
            "room": ["r1", "r1", "r2", "r1", "r2", "r1"],
            "hr": [70.5, 80.0, 65.0, None, 90.0, 75.0],
            "bp": [120, 125, 110, 130, 115, 118],
            "minutes": [0, 10, 15, 50, 70, 130],
        }
    }
)
def feature_store_ingest(inputs):
    """What a feature store's ingestion builds: DataframeSource(key_field=[patient, room],
    time_field) -> AggregateByKey(sliding hr) -> AggregateByKey(fixed bp) on one Table ->
    ReduceToDataFrame(index=[patient_id, room_id], insert_key_column_as=[patient_id, room_id],
    insert_time_column_as='event_time'): a DataFrame with a multi-index and both steps'
    features."""
    frame = pd.DataFrame(inputs["frame"])
    frame["time"] = [T0 + dt.timedelta(minutes=m) for m in frame.pop("minutes")]
    table = Table("features", NoopDriver())
    result = _replay(
        DataframeSource(frame, key_field=["patient", "room"], time_field="time"),
        [
            AggregateByKey(
                [FieldAggregator("hr", "hr", ["avg", "max", "count"], SlidingWindows(["1h", "2h"], "10m"))],
                table,
            ),
            AggregateByKey([FieldAggregator("bp", "bp", ["min", "sum"], FixedWindows(["1h"]))], table),
            ReduceToDataFrame(
                index=["patient_id", "room_id"],
                insert_key_column_as=["patient_id", "room_id"],
                insert_time_column_as="event_time",
            ),
        ],
    )
    return {
        "index": [list(i) for i in result.index],
        "index_names": list(result.index.names),
        "columns": sorted(result.columns),
        "rows": [dict(sorted(row.items())) for row in result.to_dict("records")],
    }


def run_scenario(name):
    """The encoded output of scenario `name`."""
    from tests.support.conformance import encode

    fn, inputs = SCENARIOS[name]
    return encode(fn(decode(inputs)))
