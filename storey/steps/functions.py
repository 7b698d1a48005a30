"""Steps that apply a user function to each event: Map, Filter, FlatMap, Extend, ForEach, MapClass.

They share one mechanism: ask the batch for bodies (or `Event` views with `full_event=True`),
call the function once per event in order, and build the output batch from the results. When the
function raises, the events before the failing one are still passed on, as if each event had gone
through the whole flow before the next, and then the error fails the flow.
"""

import asyncio
import inspect

from ..core.batch import EventBatch
from ..engine.graph import Flow

__all__ = ["Extend", "Filter", "FlatMap", "Flatten", "ForEach", "Map", "MapClass"]


def check_callable(step_name, param, fn):
    if not callable(fn):
        raise TypeError(f"{step_name}: {param} must be callable. Expected a callable, got {type(fn)}")


def _apply(fn, inputs):
    """Results of fn for each input, stopping at the first exception (returned alongside)."""
    results = []
    append = results.append
    try:
        for x in inputs:
            append(fn(x))
    except Exception as ex:
        return results, ex
    return results, None


async def _apply_async(fn, inputs):
    """`_apply` for a coroutine function: each result is awaited before the next call."""
    results = []
    append = results.append
    try:
        for x in inputs:
            append(await fn(x))
    except Exception as ex:
        return results, ex
    return results, None


class _UnaryFunctionFlow(Flow):
    """A step that calls `fn` once per event (in an executor when `long_running`; awaiting each
    result when `fn` is a coroutine function)."""

    def __init__(self, fn, long_running=None, **kwargs):
        super().__init__(**kwargs)
        check_callable(self.name, "fn", fn)
        self._fn = fn
        self._long_running = bool(long_running)
        self._is_async = inspect.iscoroutinefunction(fn)
        if self._long_running or self._is_async:
            self._may_suspend = True

    async def _do(self, batch):
        inputs = batch.events() if self._full_event else batch.bodies_to_change()
        if self._is_async:
            results, error = await self._apply_async(inputs)
        elif self._long_running:
            results, error = await asyncio.get_running_loop().run_in_executor(None, self._apply, inputs)
        else:
            results, error = self._apply(inputs)
        await self._emit(self._output(batch, inputs, results))
        if error is not None:
            error.add_note(f"raised in step {self.name}")
            raise error

    def _apply(self, inputs):
        return _apply(self._fn, inputs)

    async def _apply_async(self, inputs):
        return await _apply_async(self._fn, inputs)

    def _output(self, batch, inputs, results):
        """The batch to pass on, given what `_apply` returned (by default the results for the
        first len(results) events)."""
        raise NotImplementedError


def _kept(batch, inputs, indices, full_event):
    """The events at `indices`, as the function left them (it may change `Event` views)."""
    if full_event:
        return EventBatch.from_events([inputs[i] for i in indices])
    return batch.take(indices)


def _first(batch, inputs, n, full_event):
    """The first n events (those the function was called on), as the function left them."""
    if full_event:
        return EventBatch.from_events(inputs[:n])
    return batch.slice(0, n)


class Map(_UnaryFunctionFlow):
    """Maps, or transforms, incoming events using a user-provided function.

    :param fn: function to apply to each event (body => body, or Event => Event with full_event)
    :param long_running: whether fn is a long-running function, to be run in an executor to avoid
        blocking other concurrent processing. Default is False.
    :param name: name of this step, as it should appear in logs. Defaults to class name (Map).
    :param full_event: whether user functions should receive and return Event objects (when True),
        or only the payload (when False). Defaults to False.
    """

    def _output(self, batch, inputs, results):
        if self._full_event:
            return EventBatch.from_events(results)
        return batch.with_first_bodies(results)


class Filter(_UnaryFunctionFlow):
    """Filters events based on a user-provided function.

    :param fn: function to decide whether to keep each event (body => bool, or Event => bool with
        full_event)
    :param long_running: whether fn is a long-running function, run in an executor. Default False.
    :param name: name of this step, as it should appear in logs. Defaults to class name (Filter).
    :param full_event: whether fn receives Event objects (True) or only the payload (False).
    """

    def _output(self, batch, inputs, results):
        return _kept(batch, inputs, [i for i, keep in enumerate(results) if keep], self._full_event)


class ForEach(_UnaryFunctionFlow):
    """Applies given function on each event in the stream, passes original event downstream."""

    def _output(self, batch, inputs, results):
        return _first(batch, inputs, len(results), self._full_event)


class FlatMap(_UnaryFunctionFlow):
    """Maps, or transforms, each incoming event into any number of events.

    :param fn: function to transform each event to a list of events (bodies, or Event objects with
        full_event)
    :param long_running: whether fn is a long-running function, run in an executor. Default False.
    :param name: name of this step, as it should appear in logs. Defaults to class name (FlatMap).
    :param full_event: whether fn receives and returns Event objects (True) or only payloads (False).
    """

    def _output(self, batch, inputs, results):
        if self._full_event:
            return EventBatch.from_events([e for result in results for e in result])
        indices = []
        bodies = []
        for i, result in enumerate(results):
            for body in result:
                indices.append(i)
                bodies.append(body)
        return batch.with_bodies(bodies, indices)


def Flatten(**kwargs):
    """Flatten is equivalent to FlatMap(lambda x: x)."""
    return FlatMap(lambda x: x, **kwargs)


class Extend(_UnaryFunctionFlow):
    """Adds fields to each incoming event.

    :param fn: function to transform each event to a dictionary. The fields in the returned
        dictionary are then added to the original event.
    :param long_running: whether fn is a long-running function, run in an executor. Default False.
    :param name: name of this step, as it should appear in logs. Defaults to class name (Extend).
    :param full_event: whether fn receives Event objects (True) or only the payload (False).
    """

    def __init__(self, fn, long_running=None, **kwargs):
        super().__init__(fn, long_running, **kwargs)
        user_fn = self._fn
        if self._is_async:

            async def extend(x):
                _add_fields(x.body if self._full_event else x, await user_fn(x))

        elif self._full_event:

            def extend(event):
                _add_fields(event.body, user_fn(event))

        else:

            def extend(body):
                _add_fields(body, user_fn(body))

        # the fields are added as each event is processed: an event whose fields cannot be added
        # stops the step before the function sees the next one
        self._fn = extend

    def _output(self, batch, inputs, results):
        return _first(batch, inputs, len(results), self._full_event)


def _add_fields(body, extra):
    # item by item, as the reference does: a result without items() or a body that takes no
    # item assignment raise as they do there
    for name, value in extra.items():
        body[name] = value


class MapClass(_UnaryFunctionFlow):
    """Similar to Map, but instead of a function argument, this class should be extended and its do()
    method overridden. Calling `self.filter()` inside `do()` drops the current event."""

    def __init__(self, long_running=None, **kwargs):
        super().__init__(self.do, long_running, **kwargs)
        self._filter = False

    def filter(self):
        """Drops the event being processed by `do()`."""
        self._filter = True

    def do(self, element):
        raise NotImplementedError(f"{type(self).__name__} must override do()")

    # `_apply` and `_apply_async` for do(): the results are those of the events kept, and the
    # indices of those events
    def _apply(self, inputs):
        results = []
        kept = []
        do = self.do
        try:
            for i, element in enumerate(inputs):
                self._filter = False
                result = do(element)
                if not self._filter:
                    kept.append(i)
                    results.append(result)
        except Exception as ex:
            return (kept, results), ex
        return (kept, results), None

    async def _apply_async(self, inputs):
        results = []
        kept = []
        do = self.do
        try:
            for i, element in enumerate(inputs):
                self._filter = False
                result = await do(element)
                if not self._filter:
                    kept.append(i)
                    results.append(result)
        except Exception as ex:
            return (kept, results), ex
        return (kept, results), None

    def _output(self, batch, inputs, results):
        kept, results = results
        if self._full_event:
            return EventBatch.from_events(results)
        return batch.with_bodies(results, kept)
