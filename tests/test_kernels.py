"""The window kernels: compiled == pure-Python twin == a naive recomputation from the raw events.

The naive model below states our semantics directly from the events a key has received (see the
kernels' docstrings and reference-defects.md, "Late events"; sliding sums are the reference's
running sums: NaN once a NaN entered the window since the windows last started again); the kernels must
agree with it for every aggregation and window kind, out-of-order events, gaps longer than the
windows, NaN values, missing values, any batch split, and many keys.
"""

import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storey.dtypes import FieldAggregator, FixedWindows, SlidingWindows
from storey.kernels import kernels
from storey.kernels.layout import ABSENT, INT, MODE_AGG, MODE_LAST_CLOSED, MODE_QUERY
from storey.kernels.registry import AGGREGATIONS, FIRST, LAST, MAX, MIN, SQR, SUM, stats_of
from storey.table.aggregation_state import AggregationState

SECOND = 1_000_000_000
BASE = 1_595_367_600 * SECOND  # 2020-07-21T21:40:00Z
MISSING = object()


# ---------------------------------------------------------------- driving the kernels
def run_kernels(aggregators, events, compiled=True, splits=None, state=None, parts=1, emitted=None):
    """Features per event (dict name -> value; absent features left out) from the kernels.

    events: (key, time ns, value or None) in arrival order; `splits`: batch sizes to cut them into;
    `emitted`: 0/1 per event, whether the step emits it at once (None: every event, as the kernels
    are told with an empty array).
    """
    k = kernels(compiled)
    state = state or AggregationState()
    state.register(aggregators)
    result = [{} for _ in events]
    sizes = splits or [len(events)]
    start = 0
    for size in sizes:
        chunk = events[start : start + size]
        if not chunk:
            break
        n = len(chunk)
        slots = state.slots_of([e[0] for e in chunk])
        times = np.array([e[1] for e in chunk], dtype=np.int64)
        for group in state.groups:
            rows = len(group.layouts)
            values = np.zeros((rows, n))
            valid = np.zeros((rows, n), dtype=np.uint8)
            for a, layout in enumerate(group.layouts):
                field = layout.aggregator.field
                for i, (_, _, value) in enumerate(chunk):
                    v = value.get(field) if isinstance(value, dict) else value
                    if v is not None:
                        values[a, i] = v
                        valid[a, i] = 1
            out = np.zeros((group.n_features, n))
            flags = np.zeros((group.n_features, n), dtype=np.uint8)
            update = k.fixed_update if group.fixed else k.sliding_update
            update(
                group.cfg,
                group.max_values,
                times,
                slots,
                values,
                valid,
                np.zeros(0, np.uint8) if emitted is None else np.array(emitted[start : start + n], np.uint8),
                group.state,
                group.istate,
                out,
                flags,
                0,
                1,
            )
            collect(result, start, group.names, out, flags)
        start += n
    return result


def collect(result, start, names, out, flags):
    for f, name in enumerate(names):
        for i in range(out.shape[1]):
            if flags[f, i] & ABSENT:
                continue
            value = out[f, i]
            result[start + i][name] = int(value) if flags[f, i] & INT else float(value)


def read_kernels(state, events, mode, compiled=True):
    """Features the keys have at the events' times (read only)."""
    k = kernels(compiled)
    n = len(events)
    slots = state.existing_slots([e[0] for e in events])
    times = np.array([e[1] for e in events], dtype=np.int64)
    result = [{} for _ in events]
    for group in state.groups:
        out = np.zeros((group.n_features, n))
        flags = np.zeros((group.n_features, n), dtype=np.uint8)
        read = k.fixed_read if group.fixed else k.sliding_read
        read(group.cfg, group.max_values, times, slots, mode, group.state, group.istate, out, flags)
        collect(result, 0, group.names, out, flags)
    return result


# ---------------------------------------------------------------- the naive model
class Naive:
    """Our semantics, recomputed from each key's stored events."""

    def __init__(self, aggregator):
        self.agg = aggregator
        windows = aggregator.windows
        self.windows = list(dict.fromkeys(text for _, text in windows.windows_ns))
        self.lengths = dict((text, ns) for ns, text in windows.windows_ns)
        self.fixed = isinstance(windows, FixedWindows)
        self.keys = {}
        if self.fixed:
            self.period = windows.bucket_ns()
            self.unit = windows.smallest_window_unit_ns
            self.largest = windows.max_window_ns
            # every window starts again at the multiples of the cycle; a key keeps its latest's
            self.cycle = math.lcm(*self.lengths.values())
            self.precalculated = bool(stats_of(aggregator.aggregations) & (MIN | MAX | FIRST | LAST))
            # the reference's running sums, buckets subtracted as they leave a window
            self.running = not self.precalculated and aggregator.max_value is None
        else:
            self.period = windows.period_ns
            self.ring = windows.max_window_ns // self.period
            # the reference's span of buckets: its windows' least common multiple
            self.span = math.lcm(*(ns // self.period for ns, _ in windows.windows_ns))
            stats = stats_of(aggregator.aggregations)
            self.extremes = bool(stats & (MIN | MAX | FIRST | LAST))

    def features(self, window):
        out = {}
        for aggr in self.agg.aggregations:
            for text in self.windows:
                out[f"{self.agg.name}_{aggr}_{text}"] = AGGREGATIONS[aggr].naive(window[text])
        return out

    def empty(self):
        return self.features({text: [] for text in self.windows})

    # sliding
    def sliding(self, key, t, value, arrival):
        p = self.period
        b = t // p
        st = self.keys.get(key)
        if value is not None:
            if st is None:
                st = self.keys[key] = {"first": b, "latest": b, "events": [], "nan": set()}
                st["ref_first"] = dict.fromkeys(self.windows, math.nan)
            elif b < st["latest"] - self.ring + 1:
                return {}
            elif b > st["latest"]:
                # the running sums start again from zero once b is 2S buckets past the span's
                # first (S: the windows' least common multiple); those of an aggregator with min,
                # max, first or last never do, and are all added up again from their buckets when
                # a leaving bucket asks for it
                if self.extremes:
                    resum = self.resums(st, b)
                else:
                    resum = b - max(st["first"], st["latest"] - self.span + 1) >= 2 * self.span
                if resum:
                    st["nan"] = set()
                    st["ref_first"] = dict.fromkeys(self.windows, value)
            st["events"].append((t, arrival, value))
            st["latest"] = max(st["latest"], b)
            for text in self.windows:
                if b > st["latest"] - self.lengths[text] // p:
                    if value != value:
                        st["nan"].add(text)
                    if math.isnan(st["ref_first"][text]):
                        st["ref_first"][text] = value
            r = b
        else:
            if st is None:
                return self.empty()
            r = min(b, st["latest"])
            if r < st["latest"] - self.ring + 1:
                return {}
        return self.sliding_features(st, r)

    def resums(self, st, b):
        """Whether a bucket leaving a window, as the key's latest bucket moves to b, makes the
        reference add up every window again: one that holds the window's min or max, the value it
        takes for the window's first (the first value added since it last added the window up), or
        the key's latest value as its last."""
        p = self.period
        names = set(self.agg.aggregations)

        def bucket(x):
            return [e for e in st["events"] if e[0] // p == x]

        def numbers(events):
            return [v for _, _, v in events if v == v]

        def edge(events, pick):
            values = [e for e in events if e[2] == e[2]]
            return pick(values, key=lambda e: (e[0], e[1]))[2] if values else math.nan

        latest_last = edge(bucket(st["latest"]), max)
        for text in self.windows:
            size = self.lengths[text] // p
            window = [e for e in st["events"] if st["latest"] - size < e[0] // p <= st["latest"]]
            low = min(numbers(window), default=math.inf)
            high = max(numbers(window), default=-math.inf)
            for x in range(st["latest"] - size + 1, b - size + 1):
                leaving = bucket(x)
                if not leaving:
                    continue
                if "min" in names and min(numbers(leaving), default=math.inf) <= low:
                    return True
                if "max" in names and max(numbers(leaving), default=-math.inf) >= high:
                    return True
                if "first" in names and edge(leaving, min) == st["ref_first"][text]:
                    return True
                if "last" in names and edge(leaving, max) == latest_last:
                    return True
        return False

    def sliding_features(self, st, r):
        p = self.period
        kept = st["latest"] - self.ring + 1
        window = {}
        for text in self.windows:
            lo = max(r - self.lengths[text] // p + 1, kept)
            window[text] = [e for e in st["events"] if lo <= e[0] // p <= min(r, st["latest"])]
        features = self.features(window)
        if r == st["latest"] and self.agg.max_value is None:
            # the running sums, as the reference keeps them: a NaN added since the window was last
            # added up again keeps them NaN, even once its bucket has left
            for aggr in self.agg.aggregations:
                if AGGREGATIONS[aggr].stats & (SUM | SQR):
                    for text in st["nan"]:
                        features[f"{self.agg.name}_{aggr}_{text}"] = math.nan
        return features

    def sliding_query(self, key, t):
        st = self.keys.get(key)
        if st is None:
            return {}
        if t // self.period < st["latest"] - self.ring + 1:
            return {}
        return self.sliding_features(st, t // self.period)

    # fixed
    def start(self, t, length):
        if not self.precalculated:
            return (t // length) * length
        lo = (t // self.unit) * self.unit + self.unit - length
        lo = max(lo, (t // self.cycle) * self.cycle)
        return -((-lo) // self.period) * self.period

    def same_range(self, t, latest, length):
        if self.precalculated:
            # the reference's precalculated windows start again whenever any window does
            return all(t // x == latest // x for x in self.lengths.values())
        return t // length == latest // length

    def kept(self, latest):
        return (latest // self.cycle) * self.cycle

    def readable(self, latest):
        """Where a query's reads start: the largest window before the latest one."""
        return ((latest // self.largest) - 1) * self.largest

    def range_end(self, t, length):
        if self.precalculated:
            return (t // self.period + 1) * self.period
        return (t // length) * length + length

    def fixed_event(self, key, t, value, arrival):
        st = self.keys.get(key)
        if value is not None:
            if st is None:
                st = self.keys[key] = {"latest": t, "events": [], "lo": {}, "nan": set(), "since": 0}
                for text in self.windows:
                    st["lo"][text] = self.start(t, self.lengths[text])
                in_order = True
            elif t >= st["latest"]:
                if self.running and t // self.cycle - st["latest"] // self.cycle >= 2:
                    # the running sums start again from zero: the events so far are forgotten
                    st["since"], st["nan"] = len(st["events"]), set()
                for text in self.windows:
                    if not self.same_range(t, st["latest"], self.lengths[text]):
                        st["lo"][text] = self.start(t, self.lengths[text])
                st["latest"] = t
                in_order = True
            else:
                if t < self.kept(st["latest"]):
                    return {}
                in_order = False
            st["events"].append((t, arrival, value))
            if self.running and value != value:
                # a NaN stays in the running sums of the windows it entered until they start again
                st["nan"].update(text for text in self.windows if t >= st["lo"][text])
            window = {}
            for text in self.windows:
                length = self.lengths[text]
                if in_order:
                    window[text] = self.since(st, st["lo"][text], math.inf)
                else:
                    lo = max(self.start(t, length), self.kept(st["latest"]))
                    window[text] = self.since(st, lo, self.range_end(t, length))
            return self.running_nan(st, self.features(window), st["nan"] if in_order else ())
        if st is None:
            return self.empty()
        r = min(t, st["latest"])
        return self.fixed_read(st, r, last_closed=False)

    def fixed_read(self, st, r, last_closed, query=False):
        kept = self.readable(st["latest"]) if query else self.kept(st["latest"])
        if r < kept:
            return {}
        window = {}
        nan = set()
        for text in self.windows:
            length = self.lengths[text]
            if last_closed:
                lo = max((r // length - 1) * length, kept)
                end = (r // length) * length
            elif self.same_range(r, st["latest"], length):
                lo, end = st["lo"][text], math.inf
                if self.running and text in st["nan"]:
                    nan.add(text)
            else:
                lo = max(self.start(r, length), kept)
                end = self.range_end(r, length)
            window[text] = self.since(st, lo, end)
        return self.running_nan(st, self.features(window), nan)

    def since(self, st, lo, end):
        """The events from lo to end (excluded) the key still has (since its sums last started)."""
        return [e for e in st["events"][st.get("since", 0) :] if lo <= e[0] < end]

    def running_nan(self, st, features, texts):
        for aggr in self.agg.aggregations:
            if AGGREGATIONS[aggr].stats & (SUM | SQR):
                for text in texts:
                    features[f"{self.agg.name}_{aggr}_{text}"] = math.nan
        return features

    def process(self, key, t, value, arrival):
        if self.fixed:
            return self.fixed_event(key, t, value, arrival)
        return self.sliding(key, t, value, arrival)

    def query(self, key, t, last_closed=False):
        if not self.fixed:
            return self.sliding_query(key, t)
        st = self.keys.get(key)
        if st is None:
            return {}
        return self.fixed_read(st, t, last_closed, query=True)


def run_naive(aggregators, events):
    models = [Naive(a) for a in aggregators]
    out = []
    for arrival, (key, t, value) in enumerate(events):
        features = {}
        for model in models:
            v = value.get(model.agg.field) if isinstance(value, dict) else value
            features.update(model.process(key, t, v, arrival))
        out.append(features)
    return out, models


def same(a, b, exact=False):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if exact:
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def assert_features(expected, actual, exact=False):
    assert len(expected) == len(actual)
    for i, (e, a) in enumerate(zip(expected, actual)):
        assert set(e) == set(a), f"event {i}: features {sorted(set(e) ^ set(a))} differ in presence"
        for name in e:
            assert same(e[name], a[name], exact), f"event {i}: {name} expected {e[name]!r}, got {a[name]!r}"


# ---------------------------------------------------------------- random inputs
ALL = list(AGGREGATIONS)


@st.composite
def aggregator_specs(draw):
    aggrs = draw(st.lists(st.sampled_from(ALL), min_size=1, max_size=len(ALL), unique=True))
    if draw(st.booleans()):
        period = draw(st.sampled_from([1, 2, 5]))
        multiples = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3, unique=True))
        windows = SlidingWindows([f"{m * period}s" for m in multiples], f"{period}s")
    else:
        texts = draw(
            st.lists(
                st.sampled_from(["2s", "4s", "6s", "10s", "20s", "1m"]), min_size=1, max_size=3, unique=True
            )
        )
        windows = FixedWindows(texts)
    return FieldAggregator("a", "v", aggrs, windows)


values = st.one_of(
    st.integers(-50, 50),
    st.integers(-50, 50).map(lambda x: x / 4),
    st.just(None),
    st.just(math.nan),
)


@st.composite
def event_lists(draw, max_events=40):
    n = draw(st.integers(1, max_events))
    n_keys = draw(st.integers(1, 3))
    base = draw(st.sampled_from([BASE, -3 * 86_400 * SECOND + 123_000_000]))
    t = base
    events = []
    for _ in range(n):
        step = draw(
            st.one_of(
                st.integers(0, 4_000),  # in order, ms
                st.integers(-12_000, 0),  # late
                st.integers(30_000, 400_000),  # gaps longer than the windows
            )
        )
        t += step * 1_000_000
        key = draw(st.integers(0, n_keys - 1))
        events.append((f"k{key}", t, draw(values)))
    return events


# a late event's bucket leaves the ring as a later event steps more than the ring forward: its count
# is subtracted before (the reference: 1 event in the 20s window, not 2)
LATE_THEN_FAR = [
    ("k0", BASE, 0),
    ("k0", BASE, None),
    ("k0", BASE, None),
    ("k0", BASE, 0),
    ("k0", BASE + 348_000_000, 0),
    ("k1", BASE + 4 * SECOND, math.nan),
    ("k1", BASE + 2_999_000_000, 0),
    ("k0", BASE + 2_999_000_000, 0),
    ("k0", BASE + 2_999_000_000, 0),
    ("k1", BASE + 43 * SECOND, 0),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(aggregator_specs(), event_lists())
@example(FieldAggregator("a", "v", ["count"], FixedWindows(["2s", "20s"])), LATE_THEN_FAR)
@example(FieldAggregator("a", "v", ["count"], FixedWindows(["2s", "4s", "20s"])), LATE_THEN_FAR)
def test_compiled_equals_naive_recomputation(aggregator, events):
    expected, _ = run_naive([aggregator], events)
    assert_features(expected, run_kernels([aggregator], events))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(aggregator_specs(), event_lists(max_events=25))
def test_compiled_equals_pure_python_twin(aggregator, events):
    compiled = run_kernels([aggregator], events, compiled=True)
    twin = run_kernels([aggregator], events, compiled=False)
    assert_features(twin, compiled, exact=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(aggregator_specs(), event_lists(max_events=25), st.data())
def test_compiled_equals_twin_and_any_split_when_only_some_events_are_emitted(aggregator, events, data):
    # which events the step emits changes where events without a value read the windows (as
    # the reference does with EmitAfterMaxEvent), never the features of the others, and the
    # same whatever the batches
    emitted = data.draw(st.lists(st.integers(0, 1), min_size=len(events), max_size=len(events)))
    compiled = run_kernels([aggregator], events, emitted=emitted)
    assert_features(run_kernels([aggregator], events, compiled=False, emitted=emitted), compiled, exact=True)
    sizes = []
    while sum(sizes) < len(events):
        sizes.append(data.draw(st.integers(1, len(events) - sum(sizes))))
    assert_features(compiled, run_kernels([aggregator], events, splits=sizes, emitted=emitted), exact=True)
    every = run_kernels([aggregator], events)
    for i, (_, _, value) in enumerate(events):
        if value is not None:
            assert_features([every[i]], [compiled[i]], exact=True)
    assert_features(every, run_kernels([aggregator], events, emitted=[1] * len(events)), exact=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(aggregator_specs(), event_lists(), st.data())
def test_any_batch_split_gives_the_same_features(aggregator, events, data):
    whole = run_kernels([aggregator], events)
    splits = []
    left = len(events)
    while left > 0:
        size = data.draw(st.integers(1, left))
        splits.append(size)
        left -= size
    assert_features(whole, run_kernels([aggregator], events, splits=splits), exact=True)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(aggregator_specs(), event_lists(), st.integers(2, 3))
def test_keys_split_into_parts_give_the_same_features(aggregator, events, parts):
    # the steps run big batches as two calls, each for half of the keys, on two cores
    whole = run_kernels([aggregator], events)
    assert_features(whole, run_kernels([aggregator], events, parts=parts), exact=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(aggregator_specs(), event_lists(), st.lists(st.integers(-80_000, 200_000), min_size=1, max_size=10))
def test_reads_equal_naive_queries(aggregator, events, offsets):
    state = AggregationState()
    run_kernels([aggregator], events, state=state)
    _, (model,) = run_naive([aggregator], events)
    last_time = max(t for _, t, _ in events)
    queries = [(f"k{i % 4}", last_time + off * 1_000_000, None) for i, off in enumerate(offsets)]
    expected = [model.query(key, t) for key, t, _ in queries]
    assert_features(expected, read_kernels(state, queries, MODE_QUERY))
    if model.fixed:
        expected = [model.query(key, t, last_closed=True) for key, t, _ in queries]
        assert_features(expected, read_kernels(state, queries, MODE_LAST_CLOSED))


def test_several_aggregators_and_fields_in_one_pass():
    aggregators = [
        FieldAggregator("s", "v", ["sum", "count", "max"], SlidingWindows(["10s", "30s"], "5s")),
        FieldAggregator("w", "w", ["avg", "first", "last"], SlidingWindows(["1m"], "10s")),
        FieldAggregator("f", "v", ["min", "sum"], FixedWindows(["20s", "1m"])),
        FieldAggregator("g", "w", ["stddev", "sqr"], FixedWindows(["30s"])),
    ]
    rng = random.Random(7)
    t = BASE
    events = []
    for _ in range(300):
        t += rng.randint(-3_000, 9_000) * 1_000_000
        body = {
            "v": rng.choice([None, rng.randint(-9, 9), rng.random()]),
            "w": rng.choice([None, rng.randint(0, 5)]),
        }
        events.append((rng.choice("abc"), t, body))
    expected, _ = run_naive(aggregators, events)
    assert_features(expected, run_kernels(aggregators, events, splits=[1, 7, 100, 192]))


def test_one_key_and_100k_keys():
    aggregator = FieldAggregator(
        "x", "v", ["sum", "count", "min", "last"], SlidingWindows(["1m", "10m"], "1m")
    )
    rng = random.Random(3)
    one_key = [("only", BASE + i * 7 * SECOND, rng.randint(0, 9)) for i in range(3000)]
    expected, _ = run_naive([aggregator], one_key)
    assert_features(expected, run_kernels([aggregator], one_key))
    many = [(f"user{i % 100_000}", BASE + i * 1_000_000, i % 13) for i in range(200_000)]
    state = AggregationState()
    actual = run_kernels([aggregator], many, state=state, splits=[50_000] * 4)
    assert len(state.slots) == 100_000
    assert state.groups[0].state.shape[0] >= 100_000
    for i in (0, 99_999, 100_000, 150_001, 199_999):
        assert actual[i]["x_count_10m"] == (2.0 if i >= 100_000 else 1.0)
        assert actual[i]["x_sum_10m"] == (i % 13 + (i - 100_000) % 13 if i >= 100_000 else i % 13)
        assert actual[i]["x_last_1m"] == i % 13


def test_gap_longer_than_every_window_starts_over():
    aggregator = FieldAggregator(
        "x", "v", ["sum", "count", "avg", "min", "max"], SlidingWindows(["1m", "2m"], "10s")
    )
    events = [("k", BASE, 5), ("k", BASE + 10 * SECOND, 7), ("k", BASE + 3600 * SECOND, 1)]
    out = run_kernels([aggregator], events)
    assert out[2] == {
        "x_sum_1m": 1.0,
        "x_sum_2m": 1.0,
        "x_count_1m": 1.0,
        "x_count_2m": 1.0,
        "x_avg_1m": 1.0,
        "x_avg_2m": 1.0,
        "x_min_1m": 1.0,
        "x_min_2m": 1.0,
        "x_max_1m": 1.0,
        "x_max_2m": 1.0,
    }


def test_nan_values_are_counted_and_skipped_by_min_max_first_last():
    aggregator = FieldAggregator(
        "x", "v", ["count", "sum", "avg", "min", "max", "first", "last"], SlidingWindows(["1m"], "10s")
    )
    events = [
        ("k", BASE, math.nan),
        ("k", BASE + SECOND, 1),
        ("k", BASE + 11 * SECOND, math.nan),
        ("k", BASE + 80 * SECOND, 4),
    ]
    out = run_kernels([aggregator], events)
    assert math.isnan(out[0]["x_sum_1m"]) and out[0]["x_count_1m"] == 1.0 and math.isnan(out[0]["x_max_1m"])
    assert out[1]["x_count_1m"] == 2.0 and math.isnan(out[1]["x_avg_1m"])
    assert (out[1]["x_min_1m"], out[1]["x_max_1m"], out[1]["x_first_1m"], out[1]["x_last_1m"]) == (
        1.0,
        1.0,
        1.0,
        1.0,
    )
    assert out[2]["x_last_1m"] == 1.0
    # once the NaN has left the window, sums are numbers again
    assert (out[3]["x_sum_1m"], out[3]["x_count_1m"]) == (4.0, 1.0)


def test_sums_are_the_references_running_sums_to_the_last_bit():
    # as storey 1.0.6 keeps them: buckets leaving the window subtracted oldest first, then the new
    # value added (values and sums as the reference gives them)
    aggregator = FieldAggregator("x", "v", ["sum"], SlidingWindows(["30m"], "10m"))
    values = [0.1, 0.2, 0.3, 0.4, 0.7, 0.3, 0.6]
    minute = 60 * SECOND
    one_per_bucket = run_kernels(
        [aggregator], [("k", BASE + 10 * i * minute, v) for i, v in enumerate(values)]
    )
    assert [o["x_sum_30m"] for o in one_per_bucket] == [
        0.1,
        0.30000000000000004,
        0.6000000000000001,
        0.9000000000000001,
        1.4000000000000001,
        1.4000000000000001,
        1.6,
    ]
    two_per_bucket = [("k", BASE + (10 * (i // 2) + i % 2) * minute, v) for i, v in enumerate(values)]
    assert [o["x_sum_30m"] for o in run_kernels([aggregator], two_per_bucket)] == [
        0.1,
        0.30000000000000004,
        0.6000000000000001,
        1.0,
        1.7,
        2.0,
        2.3,
    ]
    # two buckets leaving at once: the older first
    jump = [("k", BASE + m * minute, v) for m, v in ((0, 0.1), (10, 0.2), (20, 0.3), (40, 0.4))]
    assert run_kernels([aggregator], jump)[-1]["x_sum_30m"] == 0.7000000000000002


@pytest.mark.parametrize(
    "aggregations, recovers",
    [
        (["sum", "avg"], False),
        (["sum", "avg", "max"], False),
        (["sum", "last"], False),
        (["sum", "avg", "min"], True),
        (["sum", "first", "max"], True),
    ],
)
def test_a_nan_in_a_sliding_window_as_in_the_reference(aggregations, recovers):
    # storey 1.0.6 keeps running sums: NaN once a NaN entered, until the windows start again;
    # with min or first among the aggregations it adds the sums up again, NaN only while it is in
    aggregator = FieldAggregator("x", "v", aggregations, SlidingWindows(["30m"], "10m"))
    minute = 60 * SECOND
    events = [("k", BASE + 10 * i * minute, v) for i, v in enumerate([math.nan, 1.0, 2.0, 3.0, 4.0])]
    events.append(("k", BASE + 200 * minute, 5.0))  # a jump every window starts again after
    sums = [o["x_sum_30m"] for o in run_kernels([aggregator], events)]
    assert all(math.isnan(x) for x in sums[:3])
    assert sums[4] == 9.0 if recovers else math.isnan(sums[4])
    assert sums[5] == 5.0


def test_a_large_value_leaving_a_window_leaves_its_rounding_behind_as_in_the_reference():
    # storey 1.0.6 subtracts it from the running sum: 1e20 + 1.5 - 1e20 is 0.0, not 1.5
    aggregator = FieldAggregator("x", "v", ["sum", "avg"], SlidingWindows(["20s"], "10s"))
    events = [("k", BASE, 1e20), ("k", BASE + 10 * SECOND, 1.5), ("k", BASE + 20 * SECOND, 2.25)]
    out = run_kernels([aggregator], events)
    assert [(o["x_sum_20s"], o["x_avg_20s"]) for o in out] == [(1e20, 1e20), (1e20, 5e19), (2.25, 1.125)]


def test_windows_start_again_only_twice_the_longest_window_past_the_ring():
    # as in the reference: until then, what is left of a sum whose buckets all left stays
    aggregator = FieldAggregator("x", "v", ["sum", "count"], SlidingWindows(["30m", "2h"], "10m"))
    minute = 60 * SECOND

    def after_gap(gap):
        events = [
            ("k", BASE, 0.1),
            ("k", BASE + 10 * minute, 0.2),
            ("k", BASE + (10 + 10 * gap) * minute, 0.3),
        ]
        out = run_kernels([aggregator], events)[-1]
        return out["x_sum_30m"], out["x_sum_2h"], out["x_count_2h"]

    assert after_gap(11) == (0.30000000000000004, 0.5, 2.0)
    assert after_gap(12) == (0.30000000000000004, 0.30000000000000004, 1.0)
    assert after_gap(22) == (0.30000000000000004, 0.30000000000000004, 1.0)
    assert after_gap(23) == (0.3, 0.3, 1.0)


def test_first_and_last_by_time_ties_by_arrival():
    # defect 1: first = smallest time (ties: earliest arrival), last = largest time (ties: latest)
    aggregator = FieldAggregator("x", "v", ["first", "last"], SlidingWindows(["1m"], "10s"))
    t = BASE + 20 * SECOND
    events = [("k", t, 1), ("k", t, 2), ("k", t - 5 * SECOND, 3), ("k", t, 4), ("k", t - 5 * SECOND, 5)]
    out = run_kernels([aggregator], events)
    assert [(o["x_first_1m"], o["x_last_1m"]) for o in out] == [(1, 1), (1, 2), (3, 3), (3, 4), (3, 5)]


def test_late_events_as_defined():
    # reference-defects.md, "Late events": a late event sees the window ending at its own time,
    # later events see it included, an event older than every kept bucket changes nothing
    aggregator = FieldAggregator("x", "v", ["sum", "count"], SlidingWindows(["30s", "1m"], "10s"))
    events = [
        ("k", BASE, 1),
        ("k", BASE + 50 * SECOND, 2),
        ("k", BASE + 15 * SECOND, 4),  # late, kept
        ("k", BASE + 55 * SECOND, 8),
        ("k", BASE - 60 * SECOND, 16),  # older than every kept bucket
        ("k", BASE + 56 * SECOND, 32),
    ]
    out = run_kernels([aggregator], events)
    assert (out[2]["x_sum_30s"], out[2]["x_sum_1m"]) == (5.0, 5.0)
    assert (out[3]["x_sum_30s"], out[3]["x_sum_1m"]) == (10.0, 15.0)
    assert out[4] == {}
    assert out[5]["x_sum_1m"] == 47.0


def test_reads_of_events_without_a_value():
    aggregator = FieldAggregator("x", "v", ["sum", "count", "avg", "min"], SlidingWindows(["1m"], "10s"))
    events = [
        ("k", BASE, None),
        ("k", BASE + SECOND, 3),
        ("k", BASE + 500 * SECOND, None),
        ("k", BASE - 60 * SECOND, None),
    ]
    out = run_kernels([aggregator], events)
    assert out[0]["x_count_1m"] == 0.0 and out[0]["x_sum_1m"] == 0.0 and math.isnan(out[0]["x_avg_1m"])
    # like the reference: the windows as they stand at the latest aggregated time
    assert out[2]["x_sum_1m"] == 3.0
    assert out[3] == {}


def test_reference_fixed_windows_with_min_max_first_last():
    # with min/max/first/last the reference restarts fixed windows as it precalculates them: when
    # an event enters a new smallest window, from the first half-smallest-window bucket at or after
    # (time rounded up to the next minute - window length); additive-only aggregators are aligned
    with_max = FieldAggregator("x", "v", ["count", "max"], FixedWindows(["15m", "1h"]))
    count_only = FieldAggregator("y", "v", ["count"], FixedWindows(["15m", "1h"]))
    minute = 60 * SECOND
    midnight = 1_595_376_000 * SECOND
    events = [("k", midnight + m * minute, 1) for m in (8, 16, 29, 31)]
    out = run_kernels([with_max, count_only], events)
    assert [o["x_count_15m"] for o in out] == [1.0, 2.0, 3.0, 2.0]
    assert [o["y_count_15m"] for o in out] == [1.0, 1.0, 2.0, 1.0]
    assert [o["x_count_1h"] for o in out] == [1.0, 2.0, 3.0, 4.0]
    out = run_kernels([with_max], [("k", midnight + 8 * minute, 1), ("k", midnight + 22 * minute, 1)])
    assert out[1]["x_count_15m"] == 1.0  # 22:00 rounds up to 23:00, past 8:00's bucket + 15m


def test_max_value_caps_as_the_reference():
    minute = 60 * SECOND
    aggregator = FieldAggregator(
        "x",
        "v",
        ["sum", "count", "max", "min", "sqr", "first", "last", "avg"],
        SlidingWindows(["30m", "1h"], "10m"),
        max_value=10,
    )

    def at(*pairs):
        return run_kernels([aggregator], [("k", BASE + m * minute, v) for v, m in pairs])

    out = at((4, 0), (4, 1), (4, 2))  # one bucket: capped in the bucket, a float
    assert out[2]["x_sum_1h"] == 10.0 and isinstance(out[2]["x_sum_1h"], float)
    assert out[2]["x_sqr_1h"] == 10.0
    out = at((6, 0), (6, 11))  # two buckets over the cap: the int max_value
    assert out[1]["x_sum_1h"] == 10 and isinstance(out[1]["x_sum_1h"], int)
    assert out[1]["x_count_1h"] == 2.0
    out = at((4, 0), (6, 11))  # exactly the cap: a float
    assert out[1]["x_sum_1h"] == 10.0 and isinstance(out[1]["x_sum_1h"], float)
    out = at((12, 0), (3, 11))
    assert out[0]["x_max_1h"] == 10.0 and out[0]["x_min_1h"] == 10 and isinstance(out[0]["x_min_1h"], int)
    assert out[1]["x_min_1h"] == 3.0 and out[1]["x_first_1h"] == 10.0 and out[1]["x_last_1h"] == 3.0
    # defect 4: derived aggregations work with max_value
    assert out[1]["x_avg_1h"] == 10 / 2
    empty = run_kernels([aggregator], [("k", BASE, None)])[0]
    assert empty["x_max_1h"] == -math.inf and empty["x_min_1h"] == 10 and empty["x_sum_1h"] == 0.0


@pytest.mark.parametrize("compiled", [True, False])
def test_unknown_keys_read_nothing(compiled):
    aggregator = FieldAggregator("x", "v", ["sum"], SlidingWindows(["1m"], "10s"))
    state = AggregationState()
    run_kernels([aggregator], [("k", BASE, 1)], state=state, compiled=compiled)
    out = read_kernels(state, [("k", BASE, None), ("other", BASE, None)], MODE_QUERY, compiled=compiled)
    assert out == [{"x_sum_1m": 1.0}, {}]
    assert read_kernels(state, [("other", BASE, None)], MODE_AGG, compiled=compiled) == [{}]


@pytest.mark.parametrize("windows, span", [(["40m"], 4), (["30m", "40m"], 12), (["40m", "1h"], 12)])
def test_sums_start_again_twice_the_windows_least_common_multiple_past_the_first_bucket(windows, span):
    # the reference's running sums start again from zero only once a new bucket is 2S buckets past
    # the first of its span (S: the windows' least common multiple in buckets, not the longest
    # window); before that, what is left of a sum whose buckets all left stays
    aggregator = FieldAggregator("x", "v", ["sum"], SlidingWindows(windows, "10m"))
    minute = 60 * SECOND
    big = float(2**60)  # absorbs the 1.0 added after it: subtracting both leaves -1.0 behind

    def sum_at(bucket):
        events = [("k", BASE, big), ("k", BASE + 10 * minute, 1.0), ("k", BASE + 10 * bucket * minute, 4.0)]
        return run_kernels([aggregator], events)[-1][f"x_sum_{windows[-1]}"]

    left_behind = (big + 1.0) - big - 1.0 + 4.0
    assert left_behind == 3.0
    assert [sum_at(b) for b in (2 * span - 1, 2 * span, 2 * span + 5)] == [left_behind, 4.0, 4.0]


def test_stdvar_negative_from_rounding_as_the_reference_reports_it():
    # near-equal values: the running sums leave the variance slightly negative; storey 1.0.6
    # reports that stdvar as it is (its stddev would fail on the square root: ours is 0.0)
    aggregator = FieldAggregator("x", "v", ["stdvar", "stddev"], SlidingWindows(["1h"], "10m"))
    minute = 60 * SECOND
    v0, v1, v2 = 1000000.2, 1000000.4, 1000000.4
    events = [("k", BASE + 7 * minute, v0), ("k", BASE + 37 * minute, v1), ("k", BASE + 87 * minute, v2)]
    s = (v0 + v1) - v0 + v2
    q = (v0 * v0 + v1 * v1) - v0 * v0 + v2 * v2
    variance = (2 * q - s * s) / 2
    assert variance < 0.0
    assert run_kernels([aggregator], events)[-1] == {"x_stdvar_1h": variance, "x_stddev_1h": 0.0}


@pytest.mark.parametrize("extreme", ["max", "min", "first"])
def test_sums_without_squares_keep_running_unless_the_reference_order_shows(extreme):
    # storey 1.0.6 adds every window up again, newest first, when a bucket holding an extreme
    # leaves; ours keeps the running sums there (the last bits may differ) except where that
    # order shows beyond rounding: a sum mostly cancelled, a window left empty (NaN: see above)
    aggregator = FieldAggregator("x", "v", ["sum", extreme], SlidingWindows(["20s"], "10s"))

    def sums(values):
        events = [("k", BASE + 10 * i * SECOND, v) for i, v in enumerate(values)]
        return [o["x_sum_20s"] for o in run_kernels([aggregator], events)]

    big = 1e20 if extreme != "min" else -1e20
    assert sums([big, 1.5, 2.25]) == [big, big + 1.5, 1.5 + 2.25]
    gap = [("k", BASE, 0.1), ("k", BASE + 5 * SECOND, 0.2), ("k", BASE + 30 * SECOND, 0.3)]
    assert run_kernels([aggregator], gap)[-1]["x_sum_20s"] == 0.3


def test_the_disk_cache_is_emptied_when_any_kernel_source_changes(tmp_path):
    from storey.kernels import cache

    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text(f"# {name}\n")
    compiled = tmp_path / "__pycache__"
    compiled.mkdir()
    machine_code = [compiled / "a.kernel-1.py311.nbi", compiled / "a.kernel-1.py311.1.nbc"]
    for path in machine_code:
        path.write_bytes(b"old")
    sources = ("a.py", "b.py")
    assert cache.refresh(str(tmp_path), sources)  # no record of the sources yet: emptied
    assert not any(path.exists() for path in machine_code)
    machine_code[0].write_bytes(b"new")
    assert not cache.refresh(str(tmp_path), sources)  # same sources: kept
    assert machine_code[0].exists()
    (tmp_path / "b.py").write_text("# b.py, changed\n")  # a file the kernel inlines from
    assert cache.refresh(str(tmp_path), sources)
    assert not machine_code[0].exists()


def fixed_sums(windows, events):
    """Sums per event of a FixedWindows sum aggregator; events: (minutes since midnight, value)."""
    aggregator = FieldAggregator("x", "v", ["sum", "count"], FixedWindows(windows))
    midnight = 1_595_289_600 * SECOND  # 2020-07-21T00:00:00Z
    out = run_kernels([aggregator], [("k", midnight + int(m * 60) * SECOND, v) for m, v in events])
    return [[o[f"x_sum_{w}"] for w in windows] for o in out]


def test_fixed_windows_subtract_the_buckets_that_leave_as_the_reference():
    # storey 1.0.6 keeps running sums in fixed windows too: a window that moves on subtracts its
    # old buckets (oldest first), leaving their rounding behind (values seen from storey 1.0.6)
    events = [(0, 1e16), (10, 1), (11, 1), (17, 1), (22, 1), (25, 1e16), (41, 1), (51, 3)]
    sums = [s for _, s in fixed_sums(["10m", "20m"], events)]
    assert sums == [1e16, 1e16, 1e16, 1e16, -2.0, 9999999999999998.0, -3.0, 0.0]


@pytest.mark.parametrize("second, expected", [(1322, 0.4), (1322.6, 0.4000000000474975)])
def test_fixed_buckets_are_half_the_windows_greatest_common_divisor(second, expected):
    # ['10m', '15m']: 2.5 minute buckets; two values in one bucket leave together
    events = [(1320, 1000000.4), (second, 0.001), (1393, 0.4)]
    assert fixed_sums(["10m", "15m", "2h"], events)[-1][0] == expected


def test_fixed_running_sums_start_again_two_largest_windows_on():
    events = [(1320, 1000000.4), (1323, 0.001), (1393, 0.4), (1463, 0.05)]
    # 10m alone: 70 minutes on is past two windows, the sums start again from zero
    assert [s for (s,) in fixed_sums(["10m"], events)][2:] == [0.4, 0.05]
    # with 2h: the 1000000.4 and 0.001 of 22:00 leave the 2h window at 00:00, subtracted
    assert fixed_sums(["10m", "2h"], events)[-1] == [0.05, 0.050000000023283045]


def test_reference_precalculated_windows_start_again_with_any_window():
    # ['10m', '15m'] with max: 2.5 minute buckets; whenever a 10m or 15m window starts, each
    # window starts again from the first bucket at or after (time rounded up to the minute - its
    # length), never before the start of the windows' 30 minute cycle (values from storey 1.0.6)
    aggregator = FieldAggregator("x", "v", ["sum", "max"], FixedWindows(["10m", "15m"]))
    minutes = [0, 3, 6, 9, 10, 12, 15, 19, 20, 24, 26, 31, 38, 45, 47, 52, 61]
    midnight = 1_595_289_600 * SECOND
    events = [("k", midnight + m * 60 * SECOND, float(2**i)) for i, m in enumerate(minutes)]
    out = run_kernels([aggregator], events)
    assert [o["x_sum_10m"] for o in out] == [
        1,
        3,
        7,
        15,
        30,
        62,
        120,
        248,
        448,
        960,
        1984,
        2048,
        6144,
        12288,
        28672,
        57344,
        65536,
    ]
    assert [o["x_sum_15m"] for o in out] == [
        1,
        3,
        7,
        15,
        31,
        63,
        126,
        254,
        504,
        1016,
        2040,
        2048,
        6144,
        12288,
        28672,
        57344,
        65536,
    ]


_CACHED_LOAD = """
import datetime as dt, json, sys
from storey import AggregateByKey, Complete, NoopDriver, SyncEmitSource, Table, build_flow
from storey.dtypes import FieldAggregator, FixedWindows, SlidingWindows
from storey.kernels import loading

aggregators = [
    FieldAggregator("s", "v", ["sum", "count", "max"], SlidingWindows(["1h", "6h"], "10m")),
    FieldAggregator("f", "v", ["sum", "min"], FixedWindows(["1h"])),
]
steps = [SyncEmitSource(), AggregateByKey(aggregators, Table("t", NoopDriver())), Complete()]
controller = build_flow(steps).run()
assert not loading("sliding", wait=300) and not loading("fixed", wait=300)
at = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
step = dt.timedelta(minutes=25)
features = [controller.emit({"v": v}, "k", at + v * step).await_result() for v in range(20)]
controller.terminate()
controller.await_termination()
from storey.kernels import sliding, fixed
hits = [sum(k.stats.cache_hits.values()) for k in (sliding.sliding_kernel, fixed.fixed_kernel)]
print(json.dumps({"features": features, "hits": hits, "registries": "numba.np.linalg" in sys.modules}))
"""


def test_kernels_load_from_the_cache_without_numbas_registries(monkeypatch):
    """A fresh process loads the cached kernels without loading every typing and lowering
    registry Numba has (0.15-0.25 s of its start-up), and they compute what the kernels' sources
    compute when interpreted."""
    import datetime as dt
    import json
    import subprocess
    import sys

    import storey.aggregations.by_key as by_key
    from storey import AggregateByKey, NoopDriver, Reduce, Table
    from tests.support.step_runs import run

    def fresh_process():
        result = subprocess.run(
            [sys.executable, "-c", _CACHED_LOAD], capture_output=True, text=True, check=True
        )
        return json.loads(result.stdout)

    fresh_process()  # fills the cache if nothing has yet
    loaded = fresh_process()
    assert loaded["hits"] == [1, 1]
    assert not loaded["registries"]

    real = by_key.kernels
    monkeypatch.setattr(by_key, "kernels", lambda compiled=True: real(False))
    aggregators = [
        FieldAggregator("s", "v", ["sum", "count", "max"], SlidingWindows(["1h", "6h"], "10m")),
        FieldAggregator("f", "v", ["sum", "min"], FixedWindows(["1h"])),
    ]
    at = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    events = [({"v": v}, "k", at + v * dt.timedelta(minutes=25)) for v in range(20)]
    steps = [AggregateByKey(aggregators, Table("t", NoopDriver())), Reduce([], lambda a, b: a + [b])]
    assert loaded["features"] == run("sync", steps, events)
