"""A live service's events reach AggregateByKey one at a time (an awaited emit is a batch of one),
and take a path of their own there (arrays kept from event to event): what they get must be what
the same events get in batches of many."""

import asyncio
import datetime as dt
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storey import (
    AggregateByKey,
    AsyncEmitSource,
    Complete,
    NoopDriver,
    Reduce,
    SyncEmitSource,
    Table,
    build_flow,
)
from storey.dtypes import FieldAggregator, FixedWindows, SlidingWindows

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def _aggregators(capped):
    return [
        FieldAggregator(
            "amount",
            "amount",
            ["sum", "count", "min", "max", "avg", "first", "last"],
            SlidingWindows(["10m", "1h"], "5m"),
            max_value=7 if capped else None,
        ),
        FieldAggregator("daily", "amount", ["sum", "max"], FixedWindows(["1h", "1d"])),
        FieldAggregator(
            "tags", "tag", ["count"], SlidingWindows(["30m"], "10m"), aggr_filter=lambda b: b.get("n", 0) != 3
        ),
    ]


def _steps(table, capped, two_steps):
    aggregators = _aggregators(capped)
    if two_steps:
        # one table, two steps: each adds the features of both, in blocks of their own
        return [
            AggregateByKey(aggregators[:1], table, aliases={"amount_sum_1h": "total_1h"}),
            AggregateByKey(aggregators[1:], table),
        ]
    return [AggregateByKey(aggregators, table)]


values = st.one_of(
    st.floats(-50, 50, allow_nan=False),
    st.integers(-5, 12),
    st.just(math.nan),
    st.none(),
    st.booleans(),
)
events = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        # mostly forward in time, some late events
        st.integers(-3_000, 9_000),
        st.one_of(values, st.just("missing")),
        st.sampled_from(["x", None, 3]),
        st.integers(0, 4),
    ),
    min_size=1,
    max_size=40,
)


def _bodies(drawn):
    out = []
    seconds = 0
    for key, step, amount, tag, n in drawn:
        seconds = max(0, seconds + step)
        body = {"key": key, "n": n}
        if amount != "missing":
            body["amount"] = amount
        if tag is not None:
            body["tag"] = tag
        out.append((body, key, T0 + dt.timedelta(seconds=seconds)))
    return out


def _one_at_a_time(drawn, capped, two_steps, emitter):
    steps = [*_steps(Table("t", NoopDriver()), capped, two_steps), Complete()]
    if emitter == "sync":
        controller = build_flow([SyncEmitSource(), *steps]).run()
        results = [controller.emit(dict(body), key, when).await_result() for body, key, when in drawn]
        controller.terminate()
        controller.await_termination()
        return results

    async def emit_all():
        controller = build_flow([AsyncEmitSource(), *steps]).run()
        results = [await controller.emit(dict(body), key, when) for body, key, when in drawn]
        await controller.terminate()
        await controller.await_termination()
        return results

    return asyncio.run(emit_all())


def _in_batches(drawn, capped, two_steps):
    controller = build_flow(
        [
            SyncEmitSource(buffer_size=1000),
            *_steps(Table("t", NoopDriver()), capped, two_steps),
            Reduce([], lambda acc, body: [*acc, body]),
        ]
    ).run()
    for body, key, when in drawn:
        controller.emit(dict(body), key, when)
    controller.terminate()
    return controller.await_termination()


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert list(x) == list(y)
        for name in x:
            same_nan = isinstance(x[name], float) and math.isnan(x[name]) and math.isnan(y[name])
            assert same_nan or (x[name] == y[name] and type(x[name]) is type(y[name])), name


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.booleans(), st.booleans(), st.sampled_from(["sync", "async"]))
def test_events_one_at_a_time_get_what_they_get_in_a_batch(drawn, capped, two_steps, emitter):
    drawn = _bodies(drawn)
    _same(_one_at_a_time(drawn, capped, two_steps, emitter), _in_batches(drawn, capped, two_steps))


def test_a_value_that_is_not_a_number_fails_the_awaited_event_naming_the_step():
    controller = build_flow(
        [SyncEmitSource(), AggregateByKey(_aggregators(False), Table("t", NoopDriver())), Complete()]
    ).run()
    controller.emit({"amount": 1.0}, "a", T0).await_result()
    with pytest.raises(TypeError, match=r"AggregateByKey: cannot aggregate field 'amount'.*'many'"):
        controller.emit({"amount": "many"}, "a", T0).await_result()
    with pytest.raises(TypeError):
        controller.await_termination()
