"""Flows for the suites of the table drivers (SQL, Redis, V3IO)."""

from storey import Reduce, SyncEmitSource, build_flow


def emit_all(steps, bodies, keys=None, **source):
    """Emits `bodies` (with `keys`, if given; the time is the time of the emit) into
    `build_flow([SyncEmitSource(**source), *steps])`; returns what reached its end, in a list."""
    flow = build_flow([SyncEmitSource(**source), *steps, Reduce([], lambda acc, x: acc + [x])]).run()
    for i, body in enumerate(bodies):
        flow.emit(body, key=None if keys is None else keys[i])
    flow.terminate()
    return flow.await_termination()
