"""The steps that hand results back: Complete (each emitted event's result to its emitter) and
Reduce (one value for the whole flow, its termination result)."""

import inspect

from ..engine.graph import Flow
from .functions import element_of

__all__ = ["Complete", "Reduce"]


class Complete(Flow):
    """Completes the `AwaitableResult` of each event that reaches it with the event body (the
    value at `input_path` in it, or the whole event with `full_event=True`), so that the emitter
    gets its result; passes events on."""

    def _needs_one_at_a_time(self, live):
        # As the reference does, an event completes after the steps below it have processed it: a
        # Complete further down completes it first, and an error there fails it instead.
        return super()._needs_one_at_a_time(live) or (live and bool(self._outlets))

    async def _do(self, batch):
        awaitables = batch.awaitables
        if awaitables is None or None in awaitables:
            if getattr(self._runtime, "results_expected", False):
                # an Event a step made replaced an emitted one: rather than leave its emitter
                # waiting forever, fail as the reference does (once the steps below have run)
                await self._emit(batch)
                raise AttributeError(
                    f"{self.name}: an event reached Complete without the awaitable result of the "
                    "emitted event it replaced (pass awaitable_result on to new Event objects)"
                )
            if awaitables is None:
                await self._emit(batch)
                return
        if batch.n == 1 and not self._input_path:
            result = batch.event(0) if self._full_event else batch.bodies_to_read()[0]
            await self._emit(batch)
            aw = awaitables[0]
            if aw is not None:
                aw._set_result(result)
            return
        if self._full_event:
            results = batch.events()
        else:
            results = [element_of(body, self._input_path) for body in batch.bodies_to_read()]
        await self._emit(batch)
        for aw, result in zip(awaitables, results, strict=True):
            if aw is not None:
                aw._set_result(result)


class Reduce(Flow):
    """Reduces all events into a single value, which is the flow's termination result.

    :param initial_value: starting value; the first call to `fn` receives it as accumulator.
    :param fn: function `(accumulator, element) -> accumulator`, called for every event.
    :param full_event: whether `fn` receives `Event` objects (True) or bodies (False, the default).
    """

    def __init__(self, initial_value, fn, **kwargs):
        super().__init__(**kwargs)
        self._describe(initial_value=initial_value)
        if not callable(fn):
            raise TypeError(f"Reduce: fn must be callable, got {type(fn).__name__}")
        self._initial_value = initial_value
        self._fn = fn
        self._result = None
        # a coroutine function's results are awaited, one event at a time
        self._is_async = inspect.iscoroutinefunction(fn)
        if self._is_async:
            self._may_suspend = True

    def to(self, outlet):
        raise ValueError("Reduce is a terminal step. It cannot be piped further.")

    def _init(self):
        self._result = self._initial_value

    async def _do(self, batch):
        fn = self._fn
        result = self._result
        elements = batch.events() if self._full_event else batch.bodies_to_read()
        if self._is_async:
            for element in elements:
                result = await fn(result, element)
                self._result = result
            return
        for element in elements:
            result = fn(result, element)
            self._result = result

    async def _on_terminate(self):
        return self._result
