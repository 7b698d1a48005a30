"""Steps that route events by a condition: Choice (one of several downstreams) and Partition
(left or right of a namedtuple)."""

from collections import namedtuple
from collections.abc import Callable
from typing import Any

from ..dtypes.event import Event
from ..engine.graph import Flow
from .functions import check_callable, element_of

__all__ = ["Choice", "Partition", "Partitioned"]

Partitioned = namedtuple("Partitioned", ["left", "right"])
Partitioned.__doc__ = """What `Partition` emits for each event: the body as `left` when the
predicate holds (`right` None), otherwise as `right` (`left` None)."""


class Choice(Flow):
    """Redirects each input element into at most one of multiple downstreams.

    The downstream steps become outlets of the Choice step: do not connect them with `to()` as well.

    :param choice_array: a list of (downstream, condition) tuples, where downstream is a step and
        condition is a function. The first condition in the list to evaluate as true for an input
        element causes that element to be redirected to that downstream step.
    :type choice_array: list of tuple of (Flow, Function (Event=>boolean))
    :param default: a default step for events that did not match any condition in choice_array. If
        not set, elements that don't match any condition will be discarded.
    :type default: Flow
    :param name: name of this step, as it should appear in logs. Defaults to class name (Choice).
    :type name: string
    :param full_event: whether conditions receive Event objects (when True), or only the payload
        (when False). Defaults to False.
    :type full_event: boolean
    """

    def __init__(self, choice_array, default=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(choice_array, str | bytes | dict) or not hasattr(choice_array, "__iter__"):
            raise TypeError(
                f"{self.name}: choice_array must be a list of (step, condition) tuples, "
                f"got {type(choice_array).__name__}: {choice_array!r}"
            )
        choices = []
        for item in choice_array:
            if not isinstance(item, tuple | list) or len(item) != 2:
                raise TypeError(
                    f"{self.name}: choice_array must be a list of (step, condition) tuples, "
                    f"got the item {item!r}"
                )
            step, condition = item
            if not isinstance(step, Flow):
                raise TypeError(
                    f"{self.name}: the downstream of a choice must be a step (a Flow), "
                    f"got {type(step).__name__}: {step!r}"
                )
            check_callable(self.name, "condition", condition)
            choices.append((step, condition))
        if default is not None and not isinstance(default, Flow):
            raise TypeError(
                f"{self.name}: default must be a step (a Flow) or None, got {type(default).__name__}"
            )
        targets = []
        for step in [step for step, _ in choices] + ([default] if default is not None else []):
            if not any(step is t for t in targets):
                targets.append(step)
                self.to(step)
        self._targets = targets
        self._conditions = [(_index_of(targets, step), condition) for step, condition in choices]
        self._default = _index_of(targets, default) if default is not None else -1

    async def _do(self, batch):
        inputs = batch.events() if self._full_event else batch.bodies_to_change()
        input_path = None if self._full_event else self._input_path
        conditions = self._conditions
        default = self._default
        routes = []
        error = None
        try:
            for element in inputs:
                if input_path:
                    element = element_of(element, input_path)
                route = default
                for target, condition in conditions:
                    if condition(element):
                        route = target
                        break
                routes.append(route)
        except Exception as ex:
            error = ex
        await self._route_by_target(batch, routes)
        if error is not None:
            error.add_note(f"raised in step {self.name}")
            raise error

    async def _route_by_target(self, batch, routes):
        """Each downstream gets its events at once (when the downstreams meet again, the engine
        hands this step one event at a time)."""
        by_target = [[] for _ in self._targets]
        for i, route in enumerate(routes):
            if route >= 0:
                by_target[route].append(i)
        for target, indices in zip(self._targets, by_target, strict=True):
            if indices:
                await target._process(batch.take(indices))


def _index_of(steps, step):
    for i, s in enumerate(steps):
        if s is step:
            return i
    raise ValueError(step)


class Partition(Flow):
    """Partitions events by calling a predicate function on each event. Each processed event
    results in a `Partitioned` namedtuple of (left, right).

    For a given event, if the predicate function results in True, the event body is assigned to
    left. Otherwise, it is assigned to right. The predicate receives the `Event`.

    :param predicate: a predicate function of the Event that results in a boolean.
    :param name: name of this step, as it should appear in logs. Defaults to class name (Partition).
    """

    def __init__(self, predicate: Callable[[Event], Any], **kwargs):
        super().__init__(**kwargs)
        check_callable(self.name, "predicate", predicate)
        self.predicate = predicate

    async def _do(self, batch):
        predicate = self.predicate
        events = batch.events()
        bodies = []
        error = None
        try:
            for event in events:
                if predicate(event):
                    bodies.append(Partitioned(event.body, None))
                else:
                    bodies.append(Partitioned(None, event.body))
        except Exception as ex:
            error = ex
        out = batch.with_first_bodies(bodies)
        if out.n:
            await self._emit(out)
        if error is not None:
            error.add_note(f"raised in step {self.name}")
            raise error
