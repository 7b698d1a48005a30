"""A live service's first events: computed by the interpreted kernels while the compiled ones
load, with the features the compiled kernels give."""

import datetime as dt
import json
import math
import pathlib
import random
import subprocess
import sys

import storey.aggregations.by_key as by_key
from storey import AggregateByKey, FieldAggregator, NoopDriver, Reduce, Table
from storey.dtypes import FixedWindows, SlidingWindows
from storey.kernels import loading
from tests.support.step_runs import run

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _aggregators():
    return [
        FieldAggregator(
            "s",
            "v",
            ["sum", "count", "avg", "min", "max", "first", "last"],
            SlidingWindows(["1h", "6h"], "10m"),
        ),
        FieldAggregator("f", "v", ["sum", "count", "max"], FixedWindows(["1h", "1d"])),
    ]


def _events(n=300, seed=3):
    rng = random.Random(seed)
    at = START
    events = []
    for _ in range(n):
        at += dt.timedelta(seconds=rng.randrange(0, 900))
        value = rng.choice([rng.uniform(-5, 5), math.nan, float(rng.randrange(3))])
        key = f"u{rng.randrange(5)}"
        events.append(({"v": value}, key, at))
    return events


def _features(events):
    bodies = run(
        "sync",
        [AggregateByKey(_aggregators(), Table("t", NoopDriver())), Reduce([], lambda a, b: a + [b])],
        events,
    )
    return [json.dumps(body, sort_keys=True) for body in bodies]


def test_events_computed_while_the_compiled_kernels_load_get_the_compiled_features(monkeypatch):
    compiled = _features(_events())
    used = []
    real = by_key.kernels

    def kernels(compiled=True):
        used.append(compiled)
        return real(compiled)

    monkeypatch.setattr(by_key, "kernels", kernels)
    monkeypatch.setattr(by_key, "loading", lambda kind, wait=0.0: True)
    assert _features(_events()) == compiled
    assert set(used) == {False}, "every one-event batch is computed by the interpreted kernels"


_BLOCKED_NUMBA = """
import importlib.abc, importlib.machinery, json, sys, threading
release = threading.Event()

class HoldNumba(importlib.abc.MetaPathFinder):
    # holds the module's execution, not the finding: a finder runs under the global import lock
    def find_spec(self, name, path, target=None):
        if name != "numba":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader = spec.loader

        class Held(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                release.wait()
                loader.exec_module(module)

        spec.loader = Held()
        return spec

sys.meta_path.insert(0, HoldNumba())
sys.path.insert(0, {root!r})
from tests.test_first_events import _aggregators, _events
from storey import AggregateByKey, Complete, NoopDriver, SyncEmitSource, Table, build_flow
from storey.kernels import kernels

step = AggregateByKey(_aggregators(), Table("t", NoopDriver()))
flow = build_flow([SyncEmitSource(), step, Complete()]).run()
out = []
events = _events()
for body, key, at in events[:20]:
    out.append(flow.emit(body, key=key, event_time=at).await_result())
held = "numba.core" not in sys.modules
release.set()
kernels()
for body, key, at in events[20:]:
    out.append(flow.emit(body, key=key, event_time=at).await_result())
flow.terminate()
flow.await_termination()
print(json.dumps({{"held": held, "features": [json.dumps(b, sort_keys=True) for b in out]}}))
"""


def test_a_fresh_process_gets_its_first_features_before_numba_has_loaded():
    root = str(pathlib.Path(__file__).resolve().parents[1])
    code = _BLOCKED_NUMBA.format(root=root)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    found = json.loads(result.stdout)
    assert found["held"], "the first 20 features came while Numba's import was held"
    assert found["features"] == _features(_events())


_EMITTING_WITHOUT_PAUSE = """
import sys
sys.path.insert(0, {root!r})
from tests.test_first_events import _aggregators, _events
from storey import AggregateByKey, Complete, NoopDriver, SyncEmitSource, Table, build_flow
from storey.kernels import loading

step = AggregateByKey(_aggregators(), Table("t", NoopDriver()))
flow = build_flow([SyncEmitSource(), step, Complete()]).run()
events = _events(n=100)
count = 0
while loading("sliding") or loading("fixed"):
    body, key, at = events[count % len(events)]
    flow.emit(body, key=key, event_time=at).await_result()
    count += 1
flow.terminate()
flow.await_termination()
print(count)
"""


def test_a_flow_emitting_without_pause_gets_its_compiled_kernels_soon():
    # the interpreted kernels serve a fresh process's events while the compiled ones load; a flow
    # whose threads hand each other events all the time must not keep the loading thread from
    # the GIL (it did for 100,000 events; the load needs a few hundred of them)
    _features(_events(n=5))
    while loading("sliding", wait=1.0) or loading("fixed", wait=1.0):
        pass  # Numba's disk cache is filled: the child process loads, not compiles
    root = str(pathlib.Path(__file__).resolve().parents[1])
    code = _EMITTING_WITHOUT_PAUSE.format(root=root)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert int(result.stdout) < 20_000
