"""Steps that apply a user function to each event: Map, Filter, FlatMap, Extend, ForEach, MapClass.

They share one mechanism: ask the batch for bodies (or `Event` views with `full_event=True`),
call the function once per event in order, and build the output batch from the results. When the
function raises, the events before the failing one are still passed on, as if each event had gone
through the whole flow before the next, and then the error fails the flow.
"""

import asyncio
import inspect

from ..core.batch import EventBatch
from ..core.paths import check_dict_like, get_in, update_in
from ..dtypes.event import _termination_obj
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


def element_of(body, input_path):
    """What a user function receives for a body: the body, or the value at `input_path`."""
    if input_path is None:
        return body
    check_dict_like(body, "input_path")
    return get_in(body, input_path)


def write_result(body, result_path, result):
    """The body holding a user function's result at `result_path` (the body itself, changed)."""
    check_dict_like(body, "result_path")
    update_in(body, result_path, result)
    return body


def with_paths(fn, input_path, result_path, is_async):
    """`fn` as a function of the body: it receives the value at `input_path`, and its result is
    written at `result_path` in the body, which is then returned. None: no path given."""
    if not input_path and not result_path:
        return None
    input_path = input_path or None
    if is_async:

        async def call(body):
            result = await fn(element_of(body, input_path))
            return write_result(body, result_path, result) if result_path else result

    else:

        def call(body):
            result = fn(element_of(body, input_path))
            return write_result(body, result_path, result) if result_path else result

    return call


class _UnaryFunctionFlow(Flow):
    """A step that calls `fn` once per event (in an executor when `long_running`; awaiting each
    result when `fn` is a coroutine function).

    A subclass written against storey 1.0.6 that implements `async def _do_internal(self, event,
    fn_result)` (calling `_do_downstream`) runs as it does there: per event, `fn` receives
    `_get_event_or_body(event)` and `_do_internal` its result."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "_do_internal" in cls.__dict__ and not cls._per_event and not cls._takes_batches_in_do():
            cls._per_event = True
            cls._do_event = _UnaryFunctionFlow._do_one
            cls._may_suspend = True

    def __init__(self, fn, long_running=None, **kwargs):
        super().__init__(**kwargs)
        check_callable(self.name, "fn", fn)
        self._fn = fn
        self._given_fn = fn
        self._long_running = bool(long_running)
        self._is_async = inspect.iscoroutinefunction(fn)
        if self._long_running or self._is_async:
            self._may_suspend = True
        if not self._full_event:
            self._fn = self._with_paths(fn) or fn

    def _with_paths(self, fn):
        """`fn` made to read `input_path` and write `result_path` of the body (None: no paths)."""
        return with_paths(fn, self._input_path, self._result_path, self._is_async)

    # ---- storey's per-event interface, for subclasses that implement _do_internal
    async def _call(self, element):
        """The user function's result for one element (awaited, or from an executor)."""
        fn = self._given_fn
        if self._long_running:
            result = await asyncio.get_running_loop().run_in_executor(None, fn, element)
        else:
            result = fn(element)
        if self._is_async:
            result = await result
        return result

    async def _do_internal(self, event, fn_result):
        raise NotImplementedError(f"{type(self).__name__} must implement _do_internal(event, fn_result)")

    async def _do_one(self, event):
        if event is _termination_obj:
            return await self._do_downstream(_termination_obj)
        element = self._get_event_or_body(event)
        await self._do_internal(event, await self._call(element))
        return None

    # ---- batches
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

    def _with_paths(self, fn):
        # the event passes as it is: result_path does not apply
        return with_paths(fn, self._input_path, None, self._is_async)

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

    def _with_paths(self, fn):
        # result_path takes each item of the result in turn (see _do)
        return with_paths(fn, self._input_path, None, self._is_async)

    async def _do(self, batch):
        if self._full_event or not self._result_path:
            await super()._do(batch)
            return
        # as storey does, each item is written into the body and passed on before the next: the
        # events share the body
        bodies = batch.bodies_to_change()
        if self._is_async:
            results, error = await self._apply_async(bodies)
        elif self._long_running:
            results, error = await asyncio.get_running_loop().run_in_executor(None, self._apply, bodies)
        else:
            results, error = self._apply(bodies)
        for i, items in enumerate(results):
            for item in items:
                write_result(bodies[i], self._result_path, item)
                await self._emit(batch.take([i]))
        if error is not None:
            error.add_note(f"raised in step {self.name}")
            raise error

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
    """Flatten is equivalent to FlatMap(lambda x: x). It iterates the body: as in storey,
    `full_event` is taken as False."""
    if kwargs:
        kwargs["full_event"] = False
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
        # fn receives the value at input_path; the fields go into the body (result_path does not
        # apply)
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

    def _with_paths(self, fn):
        return with_paths(fn, self._input_path, None, self._is_async)

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

    def _with_paths(self, fn):
        # do() is called with the element in _apply, which writes the result of the events kept
        return None

    # `_apply` and `_apply_async` for do(): the results are those of the events kept, and the
    # indices of those events
    def _apply(self, inputs):
        results = []
        kept = []
        do = self.do
        paths = not self._full_event and (self._input_path or self._result_path)
        try:
            for i, element in enumerate(inputs):
                self._filter = False
                result = do(self._element(element) if paths else element)
                if not self._filter:
                    results.append(self._output_of(element, result) if paths else result)
                    kept.append(i)
        except Exception as ex:
            return (kept, results), ex
        return (kept, results), None

    async def _apply_async(self, inputs):
        results = []
        kept = []
        do = self.do
        paths = not self._full_event and (self._input_path or self._result_path)
        try:
            for i, element in enumerate(inputs):
                self._filter = False
                result = await do(self._element(element) if paths else element)
                if not self._filter:
                    results.append(self._output_of(element, result) if paths else result)
                    kept.append(i)
        except Exception as ex:
            return (kept, results), ex
        return (kept, results), None

    def _element(self, body):
        return element_of(body, self._input_path or None)

    def _output_of(self, body, result):
        """The body to pass on: do()'s result, or the body holding it at result_path."""
        return write_result(body, self._result_path, result) if self._result_path else result

    def _output(self, batch, inputs, results):
        kept, results = results
        if self._full_event:
            return EventBatch.from_events(results)
        return batch.with_bodies(results, kept)
