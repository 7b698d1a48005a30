"""What the modules of scenarios run alike under the reference and this project share
(tests/support/compat_scenarios.py, tests/support/aggregation_compat.py): their registry, the
time their events start at, the step that collects a flow's output, and the name of what a call
raises. Uses only storey's public names, so that it imports under either implementation."""

import datetime as dt

from storey import Reduce

T0 = dt.datetime(2020, 7, 21, 21, 40, tzinfo=dt.UTC)


def registry():
    """A module's scenarios (name -> (function, inputs)), and the decorator `scenario(inputs)`
    that registers a function there with its inputs (JSON-encodable, in the cases' encoding)."""
    scenarios = {}

    def scenario(inputs):
        def register(fn):
            scenarios[fn.__name__] = (fn, inputs)
            return fn

        return register

    return scenarios, scenario


def collect():
    """A step that gathers the bodies reaching it: the flow's termination result is their list."""
    return Reduce([], lambda acc, body: acc + [body])


def raised(fn):
    """The name of the exception type `fn()` raises, or None."""
    try:
        fn()
    except Exception as ex:
        return type(ex).__name__
    return None
