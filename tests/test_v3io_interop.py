"""Tables storey 1.0.6 aggregated into V3IO, continued by ours, and the reverse.

tests/data/v3io/storey_1_0_6_tables.json holds what storey 1.0.6 stored (its items and .schema
object, recorded from the V3IO emulator) after a flow over the first part of each scenario's
events, and what it emitted (a second flow over the rest of the events; one flow over all of
them). Here:

- ours continues those items with the features of an uninterrupted run (of ours, and, where no
  event comes late, storey's own);
- ours writes, for the same events, the arrays storey writes, so that storey continues ours as
  it continues its own tables.

Where storey 1.0.6's items miss what it aggregated (`INCOMPLETE`), no library can continue them
exactly; those scenarios are left out of the exact comparisons, and the loss is shown.
"""

import datetime as dt
import json
import math
import pathlib

import pytest

from storey import (
    AggregateByKey,
    FieldAggregator,
    FixedWindows,
    NoopDriver,
    NoSqlTarget,
    QueryByKey,
    Reduce,
    SlidingWindows,
    SyncEmitSource,
    Table,
    V3ioDriver,
    build_flow,
)
from storey.testing.v3io.typed_values import decode_attributes, readable

DATA = json.loads((pathlib.Path(__file__).parent / "data" / "v3io" / "storey_1_0_6_tables.json").read_text())
SCENARIOS = DATA["scenarios"]
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

# what storey 1.0.6 failed to store, scenario by scenario
INCOMPLETE = {
    # fixed windows: the events after a window moved on are not stored when the flow ends while
    # the write made as it moved is in flight (the key is then skipped)
    "fixed_all": "the stretch of the latest fixed window is not stored",
    "fixed_all_late": "the stretch of the latest fixed window is not stored",
    "max_value": "the stretch of the latest fixed window is not stored",
    "max_value_late": "the stretch of the latest fixed window is not stored",
    # with use_parallel_operations, the first aggregator's buckets are dropped from the update
    # when a later aggregator has one pending bucket only
    "filter_two": "buckets of the first aggregator are not stored",
    "filter_two_late": "buckets of the first aggregator are not stored",
    # flushing every event, the stored sums add up capped increments past max_value
    "max_value_tail": "stored sums exceed max_value",
}
# whose continuation misses what storey did not store
LOSSY = {"fixed_all_late", "max_value_late", "filter_two", "filter_two_late"}


def _not_threes(body):
    return body.get("v", 0) % 3 != 0


AGGREGATORS = {
    "sum_count": lambda: [FieldAggregator("x", "v", ["sum", "count"], SlidingWindows(["1h"], "10m"))],
    "sliding_all": lambda: [
        FieldAggregator(
            "a",
            "v",
            ["count", "sum", "sqr", "avg", "min", "max", "first", "last", "stddev", "stdvar"],
            SlidingWindows(["20m", "1h"], "10m"),
        )
    ],
    "fixed_all": lambda: [
        FieldAggregator(
            "f",
            "v",
            ["count", "sum", "sqr", "avg", "min", "max", "first", "last"],
            FixedWindows(["30m", "2h"]),
        )
    ],
    "max_value": lambda: [
        FieldAggregator("c", "v", ["sum", "count"], SlidingWindows(["1h"], "10m"), max_value=40),
        FieldAggregator("d", "w", ["sum", "max"], FixedWindows(["1h"]), max_value=50),
    ],
    "filter_two": lambda: [
        FieldAggregator(
            "g", "v", ["sum", "count", "max"], SlidingWindows(["30m", "2h"], "10m"), aggr_filter=_not_threes
        ),
        FieldAggregator("h", "w", ["sum", "last"], FixedWindows(["1h"])),
    ],
    "min_max_24h": lambda: [
        FieldAggregator("m", "v", ["min", "max", "sum"], SlidingWindows(["20m", "30m"], "10m"))
    ],
}


def _late(events):
    return any(a["t"] > b["t"] for a, b in zip(events, events[1:], strict=False))


def _run(table, scenario, events):
    """What ours emits over `events`, as the recording's flows ran (times in minutes after T0)."""
    flow = build_flow(
        [
            SyncEmitSource(key_field="k", time_field="t"),
            AggregateByKey(AGGREGATORS[scenario["aggregators"]](), table),
            NoSqlTarget(table, columns=["w"]),
            Reduce([], lambda acc, body: acc + [body]),
        ]
    ).run()
    for body in events:
        flow.emit({**body, "t": T0 + dt.timedelta(minutes=body["t"])})
    flow.terminate()
    return [_recorded_form(body) for body in flow.await_termination()]


def _recorded_form(body):
    out = {}
    for name, value in body.items():
        if isinstance(value, dt.datetime):
            value = round((value - T0).total_seconds() / 60)
        elif isinstance(value, float) and math.isnan(value):
            value = "NaN"
        out[name] = value
    return out


def _without_first_and_last(outputs):
    return [
        {name: value for name, value in body.items() if "_first_" not in name and "_last_" not in name}
        for body in outputs
    ]


def _store(v3io, path, scenario):
    """Puts storey 1.0.6's recorded items and .schema object in the emulator."""
    for key, item in scenario["items"].items():
        v3io.namespace.put_item(f"{path}/{key}", {"Item": item})
    v3io.namespace.put_object(f"{path}/.schema", json.dumps(scenario["schema"]).encode())


def _driver(v3io):
    return V3ioDriver(v3io.url, "key")


def _continued_and_whole(v3io, name):
    """The features ours emits continuing storey's table of scenario `name` over the rest of its
    events, and those an uninterrupted in-memory run emits for the same events."""
    scenario = SCENARIOS[name]
    path = f"bigdata/{name}"
    _store(v3io, path, scenario)
    k = scenario["split"]
    continued = _run(Table(path, _driver(v3io)), scenario, scenario["events"][k:])
    return continued, _run(Table("memory", NoopDriver()), scenario, scenario["events"])[k:]


@pytest.mark.parametrize("name", sorted(set(SCENARIOS) - LOSSY))
def test_ours_continues_what_storey_stored(v3io_emulator, name):
    scenario, k = SCENARIOS[name], SCENARIOS[name]["split"]
    continued, whole = _continued_and_whole(v3io_emulator, name)
    # exactly an uninterrupted run's features, first and last included
    assert continued == whole
    if not _late(scenario["events"]):
        # storey's own (where it does not differ on first and last: reference defect 1)
        assert _without_first_and_last(continued) == _without_first_and_last(scenario["whole"][k:])


def test_query_by_key_reads_what_storey_stored(v3io_emulator):
    scenario = SCENARIOS["sliding_all"]
    path = "bigdata/query"
    _store(v3io_emulator, path, scenario)
    k = scenario["split"]
    # at the time of each key's latest stored event: the features it was emitted with
    latest = {}
    for body in scenario["whole"][:k]:
        latest[body["k"]] = body
    features = [name for name in latest["k0"] if name.startswith("a_")]
    flow = build_flow(
        [
            SyncEmitSource(key_field="k", time_field="t"),
            QueryByKey(features, Table(path, _driver(v3io_emulator))),
            Reduce([], lambda acc, body: acc + [body]),
        ]
    ).run()
    for key, body in sorted(latest.items()):
        flow.emit({"k": key, "t": T0 + dt.timedelta(minutes=body["t"])})
    flow.terminate()
    read = [_recorded_form(body) for body in flow.await_termination()]
    expected = [
        {"k": key, "t": body["t"], **{name: body[name] for name in features}}
        for key, body in sorted(latest.items())
    ]
    assert _without_first_and_last(read) == _without_first_and_last(expected)


@pytest.mark.parametrize("name", sorted(LOSSY))
def test_what_storey_did_not_store_is_missing_from_its_continuation(v3io_emulator, name):
    scenario, k = SCENARIOS[name], SCENARIOS[name]["split"]
    continued, whole = _continued_and_whole(v3io_emulator, name)
    assert continued != whole
    # ours stores what it aggregated: a table ours wrote continues exactly
    ours = f"bigdata/{name}_ours"
    _run(Table(ours, _driver(v3io_emulator)), scenario, scenario["events"][:k])
    assert _run(Table(ours, _driver(v3io_emulator)), scenario, scenario["events"][k:]) == whole


@pytest.mark.parametrize("name", sorted(set(SCENARIOS) - set(INCOMPLETE)))
def test_ours_writes_the_arrays_storey_writes(v3io_emulator, name):
    scenario = SCENARIOS[name]
    path = f"bigdata/{name}"
    k = scenario["split"]
    _run(Table(path, _driver(v3io_emulator)), scenario, scenario["events"][:k])
    ours = v3io_emulator.items(path)
    theirs = {key: readable(decode_attributes(item)) for key, item in scenario["items"].items()}
    assert sorted(ours) == sorted(theirs)
    for key, item in ours.items():
        written = {name: value for name, value in item.items() if not name.endswith("_state")}
        # every attribute ours writes is storey's, with its value (arrays element by element)
        assert {name: theirs[key].get(name) for name in written} == written, key
        # storey also holds older stretches, of buckets no window reaches any more
        newest = {
            name[:-2]: value
            for name, value in written.items()
            if name.startswith("_") and name[-2:] in ("_a", "_b")
        }
        for name in set(theirs[key]) - set(written):
            if name.startswith("_"):
                assert theirs[key][name] < newest[name[:-2]], (key, name)
    # and the same .schema entries (with a description of ours beside them)
    schema = json.loads(v3io_emulator.namespace.get_object(f"{path}/.schema")[0])
    aggregators = {aggregator.name: aggregator for aggregator in AGGREGATORS[scenario["aggregators"]]()}
    for aggregator, entry in scenario["schema"].items():
        stored = {**schema[aggregator], "aggregates": sorted(schema[aggregator]["aggregates"])}
        assert stored.pop("storey")["aggregations"] == list(aggregators[aggregator].aggregations)
        assert stored == {**entry, "aggregates": sorted(entry["aggregates"])}
