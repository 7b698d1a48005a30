"""Recovery: the `recovery_step` parameter of every step, and the `Recover` step."""

import pytest

from storey import Flow, Map, Reduce, SyncEmitSource, build_flow
from storey.steps import Recover
from tests.support.step_runs import RUNNERS, run_sync


def _bad(x):
    if x == 2:
        raise ValueError("two")
    if x == 3:
        raise KeyError("three")
    return x * 10


def _collect():
    return Reduce([], lambda acc, x: acc + [x])


class Record(Flow):
    """Records (body, key, error type) of each event; counts its terminations."""

    _takes_batches = True  # its _do takes EventBatches

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []
        self.terminated = 0

    async def _do(self, batch):
        for event in batch.events():
            self.seen.append((event.body, event.key, type(event.error).__name__ if event.error else None))
        await self._emit(batch)

    async def _on_terminate(self):
        self.terminated += 1
        return "record result"


def _keyed(bodies=range(5)):
    """The bodies to emit with the keys 'k0', 'k1', ..."""
    return [(body, f"k{i}", None) for i, body in enumerate(bodies)]


@pytest.mark.parametrize("source, run", RUNNERS)
def test_recovery_step_takes_the_failing_events_with_their_error_and_the_flow_goes_on(source, run):
    recovery = Record()
    result = run(build_flow([source(), Map(_bad, recovery_step=recovery), _collect()]), _keyed())
    assert result == [0, 10, 40]
    assert recovery.seen == [(2, "k2", "ValueError"), (3, "k3", "KeyError")]
    assert recovery.terminated == 1


@pytest.mark.parametrize("source, run", RUNNERS)
def test_recovery_step_dict_matches_the_exact_exception_type(source, run):
    on_value, on_key = Record(), Record()
    flow = build_flow(
        [source(), Map(_bad, recovery_step={ValueError: on_value, KeyError: on_key}), _collect()]
    )
    assert run(flow, _keyed()) == [0, 10, 40]
    assert on_value.seen == [(2, "k2", "ValueError")]
    assert on_key.seen == [(3, "k3", "KeyError")]

    base_class_only = Record()
    flow = build_flow([source(), Map(_bad, recovery_step={Exception: base_class_only}), _collect()])
    with pytest.raises(ValueError, match="two"):
        run(flow, _keyed())
    assert base_class_only.seen == []


def test_a_type_missing_from_the_recovery_dict_fails_the_flow():
    on_key = Record()
    with pytest.raises(ValueError, match="two"):
        run_sync(
            build_flow([SyncEmitSource(), Map(_bad, recovery_step={KeyError: on_key}), _collect()]), _keyed()
        )


def test_recovery_step_does_not_take_errors_raised_further_down():
    recovery = Record()
    flow = build_flow([SyncEmitSource(), Map(lambda x: x, recovery_step=recovery), Map(_bad), _collect()])
    with pytest.raises(ValueError):
        run_sync(flow, _keyed())
    assert recovery.seen == []


def test_recovery_step_set_later_and_its_result_is_not_the_flows():
    step = Map(_bad)
    recovery = Reduce([], lambda acc, x: acc + [("recovered", x)])
    assert step.set_recovery_step(recovery) is step
    # the recovery Reduce is flushed, but the flow's result comes from its outlets only
    assert run_sync(build_flow([SyncEmitSource(), step]), _keyed()) is None


def test_recovery_step_that_is_also_the_next_step_gets_every_event_once():
    collect = _collect()
    result = run_sync(build_flow([SyncEmitSource(), Map(_bad, recovery_step=collect), collect]), _keyed())
    assert result == [0, 10, 2, 3, 40]


def test_recovery_step_of_a_step_after_a_flatmap_takes_only_the_failing_event():
    from storey import FlatMap

    recovery = Record()
    flow = build_flow(
        [
            SyncEmitSource(),
            FlatMap(lambda x: [x, x + 1, x + 2]),
            Map(_bad, recovery_step=recovery),
            _collect(),
        ]
    )
    assert run_sync(flow, _keyed([0])) == [0, 10]
    assert recovery.seen == [(2, "k0", "ValueError")]


def test_an_error_in_the_recovery_step_fails_the_flow():
    flow = build_flow([SyncEmitSource(), Map(_bad, recovery_step=Map(lambda x: 1 / 0)), _collect()])
    with pytest.raises(ZeroDivisionError):
        run_sync(flow, _keyed())


@pytest.mark.parametrize("source, run", RUNNERS)
def test_recover_routes_events_that_failed_downstream_by_exact_type(source, run):
    on_value, on_key = Record(), Record()
    flow = build_flow(
        [
            source(),
            Recover({ValueError: on_value, KeyError: on_key}),
            Map(lambda x: x * 100),
            Map(lambda x: _bad(x // 100)),
            _collect(),
        ]
    )
    assert run(flow, _keyed()) == [0, 10, 40]
    # the event as it reached Recover, not as the failing step saw it; Recover sets no error
    assert on_value.seen == [(2, "k2", None)]
    assert on_key.seen == [(3, "k3", None)]
    assert on_value.terminated == on_key.terminated == 1


def test_recover_lets_other_exception_types_fail_the_flow():
    on_exception = Record()
    flow = build_flow([SyncEmitSource(), Recover({Exception: on_exception}), Map(_bad), _collect()])
    with pytest.raises(ValueError):
        run_sync(flow, _keyed())
    assert on_exception.seen == []


def test_recover_hands_over_the_body_with_changes_made_in_place_downstream():
    seen = []

    def mutate(body):
        body["touched"] = True
        if body["i"] == 1:
            raise ValueError("x")
        return body

    flow = build_flow([SyncEmitSource(), Recover({ValueError: Map(seen.append)}), Map(mutate), _collect()])
    assert run_sync(flow, _keyed([{"i": 0}, {"i": 1}])) == [{"i": 0, "touched": True}]
    assert seen == [{"i": 1, "touched": True}]


def test_recover_handler_can_be_a_reduce():
    handler = Reduce([], lambda acc, x: acc + [x])
    flow = build_flow(
        [
            SyncEmitSource(),
            Recover({ValueError: handler}),
            Map(_bad, recovery_step={KeyError: Record()}),
            _collect(),
        ]
    )
    assert run_sync(flow, _keyed()) == [0, 10, 40]


def test_a_recovery_step_closer_to_the_failure_wins():
    outer, inner = Record(), Record()
    flow = build_flow(
        [
            SyncEmitSource(),
            Recover({KeyError: outer, ValueError: outer}),
            Map(_bad, recovery_step={KeyError: inner}),
            _collect(),
        ]
    )
    assert run_sync(flow, _keyed()) == [0, 10, 40]
    assert outer.seen == [(2, "k2", None)]
    assert inner.seen == [(3, "k3", "KeyError")]


def test_an_error_in_the_recover_handler_fails_the_flow():
    flow = build_flow([SyncEmitSource(), Recover({ValueError: Map(lambda x: 1 / 0)}), Map(_bad), _collect()])
    with pytest.raises(ZeroDivisionError):
        run_sync(flow, _keyed())


@pytest.mark.parametrize(
    "bad, message",
    [
        (None, "exception_to_downstream must be a dict"),
        (Map(lambda x: x), "exception_to_downstream must be a dict"),
        ({"ValueError": Map(lambda x: x)}, "exception_to_downstream keys must be exception types"),
        ({ValueError: lambda x: x}, r"exception_to_downstream\[ValueError\] must be a step"),
    ],
)
def test_recover_rejects_bad_parameters_at_construction(bad, message):
    with pytest.raises(TypeError, match=f"Recover: {message}"):
        Recover(bad)
