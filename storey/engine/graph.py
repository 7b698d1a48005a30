"""The flow graph: the `Flow` step base class, wiring (`to`, `build_flow`), termination, and how
events pass from step to step.

A step processes one `EventBatch` per call (`_do`) and sends its output batch to its outlets
(`_emit`). Steps are coroutines so that a step may wait on I/O, but most never do: a flow in
which no step can suspend runs inline, in the thread that emits (see `storey.engine.runtime`).

Whether a step takes a batch at once or its events one at a time is decided in one place, when a
run starts (`init_graph`, see `one_at_a_time`): a step then receives batches through its
`_process`, which is its `_do` itself or `_process_one_at_a_time`.
"""

import copy
import inspect
import traceback

from ..core.batch import EventBatch
from ..core.paths import check_dict_like, get_in, update_in
from ..dtypes.event import _termination_obj

# The package whose steps take whole batches in `_do`; a subclass written elsewhere that overrides
# `_do` takes one event at a time, as storey 1.0.6's steps do.
_PACKAGE = __name__.partition(".")[0]
# Keyword arguments that name a step's place in the flow rather than configure it (`to_dict`).
_META_KWARGS = ("context", "name", "input_path", "result_path", "full_event", "kwargs")


def _first_not_none(result, outlet_result):
    return result if result is not None else outlet_result


def drive(coro):
    """Runs a step coroutine that does not suspend to completion, in the calling thread."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("a step suspended while its flow ran inline; mark it _may_suspend")


class Flow:
    """Base class of all flow steps.

    A step written as storey 1.0.6's are, overriding `async def _do(self, event)` to handle one
    `Event` at a time, calling `await self._do_downstream(event)` to pass events on and
    `_do_downstream(_termination_obj)` (`storey.dtypes._termination_obj`) when it receives that
    object at the end, runs as it does there: the engine hands it its events one at a time.

    :param recovery_step: a step, or a dict from exception type to step, that receives the events
        whose processing raised (with `event.error` set, and `event.origin_state` the name of the
        step that raised) instead of failing the flow. Optional.
    :param termination_result_fn: combines the termination results of the step's outlets.
    :param context: a `Context` holding parameters, secrets and tables. A context with a
        `push_error(event, message, source=step_name)` method receives the events whose processing
        raised in the step, which are then dropped while the flow goes on; with `verbose` true and
        a `logger`, each event a step passes on is logged at debug level.
    :param name: name of this step, as it should appear in logs. Defaults to the class name.
    :param full_event: whether user functions receive and return `Event` objects (True) or only
        bodies (False, the default).
    :param input_path: a dotted path into dict bodies (`'a.b'`): user functions receive the value
        there instead of the body.
    :param result_path: a dotted path into dict bodies: a user function's result is written there,
        in the body, instead of replacing the body.
    """

    _legal_first_step = False
    # True for steps that await I/O or executors: a flow holding one runs on its event loop.
    _may_suspend = False
    # True for steps that take over events whose processing failed further down (Recover).
    _handles_errors = False
    # True for steps that keep a thread of their own busy writing (ParquetTarget): steps before them
    # leave the second core to it.
    _writes_in_a_thread = False
    # Whether the step's `_do` takes one `Event` at a time (set for steps written against storey's
    # per-event `_do`; see __init_subclass__). `_do_event` is then what takes each event.
    _per_event = False
    _do_event = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "_do" in cls.__dict__:
            batches = cls._takes_batches_in_do()
            cls._per_event = not batches
            cls._do_event = None if batches else cls.__dict__["_do"]
        if cls._per_event:
            # storey's `_do` is a coroutine that may await anything: the flow runs on its loop
            cls._may_suspend = True

    @classmethod
    def _takes_batches_in_do(cls):
        """Whether the class's own methods take batches: a step of this package, or a class that
        says so with `_takes_batches = True`."""
        return cls.__dict__.get("_takes_batches", False) or cls.__module__.partition(".")[0] == _PACKAGE

    def __init__(
        self,
        recovery_step=None,
        termination_result_fn=_first_not_none,
        context=None,
        **kwargs,
    ):
        self._outlets = []
        self._inlets = []
        self._recovery_step = recovery_step
        self._termination_result_fn = termination_result_fn
        self.context = context
        self.verbose = bool(context is not None and getattr(context, "verbose", False))
        self.logger = getattr(context, "logger", None) if context is not None else None
        self.name = kwargs.get("name") or type(self).__name__
        self._full_event = bool(kwargs.get("full_event"))
        self._input_path = kwargs.get("input_path")
        self._result_path = kwargs.get("result_path")
        self._kwargs = kwargs
        self._closeables = []
        self._runtime = None
        self._graph_inlets = 0
        self._terminations = 0
        # decided by init_graph when a run starts
        self._one_at_a_time = False
        self._process = self._do
        self._takes_batch = self._do

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"

    # ---- wiring
    def to(self, outlet):
        """Adds `outlet` after this step and returns it, so that calls can be chained."""
        if not isinstance(outlet, Flow):
            raise TypeError(f"{self.name}.to(): expected a step (a Flow), got {type(outlet).__name__}")
        if outlet._legal_first_step:
            raise ValueError(f"{outlet.name} can only appear as the first step of a flow")
        self._outlets.append(outlet)
        outlet._inlets.append(self)
        return outlet

    def set_recovery_step(self, recovery_step):
        self._recovery_step = recovery_step
        return self

    def run(self):
        raise ValueError("Flow must start with a source")

    # ---- per-run life cycle, overridden by steps
    def _init(self):
        """Resets the step's state for a new run of its flow."""

    def _state_objects(self):
        """State this step shares with other steps (tables, dicts): steps that share state see
        events one at a time, in the order the reference would process them."""
        return ()

    def _needs_one_at_a_time(self, live):
        """Whether the step itself needs its events one at a time in a live flow (`live`: emitted
        events) or a replay; the engine adds the flow's reasons (see `one_at_a_time`)."""
        return self._per_event or self.verbose or self._handles_errors or self._takes_over_failures()

    def _takes_over_failures(self):
        """Whether an event whose processing raised in this step goes to a recovery step or to the
        context's `push_error`, rather than failing the flow."""
        return self._recovery_step is not None or hasattr(self.context, "push_error")

    async def _before_one_at_a_time(self, batch):
        """Called with a whole batch before its events are handed to the step one at a time: a step
        reading a table loads the keys of the batch here, in one driver call."""

    async def _do(self, batch):
        await self._emit(batch)

    async def _on_terminate(self):
        """Flushes whatever the step holds (it may still `_emit`); returns its termination result."""
        return None

    def _close(self):
        """Releases resources (files, connections) after termination or failure."""

    # ---- storey's per-event interface, for steps written against it
    async def _do_downstream(self, event):
        """Passes one `Event` on to the outlets; `_termination_obj` terminates them instead, and
        the outlets' termination result is returned."""
        if event is _termination_obj:
            return await self._terminate_downstream(None)
        if self._outlets:
            await self._emit(EventBatch.from_events([event]))
        return None

    def _get_event_or_body(self, event):
        """What a user function of this step receives for `event`: the event (full_event), the
        value at input_path, or the body."""
        if self._full_event:
            return event
        if self._input_path:
            check_dict_like(event.body, "input_path")
            return get_in(event.body, self._input_path)
        return event.body

    def _user_fn_output_to_event(self, event, fn_result):
        """The event a user function's result makes: the result itself (full_event), or a shallow
        copy of `event` whose body is the result, or holds it at result_path."""
        if self._full_event:
            return fn_result
        mapped = copy.copy(event)
        if self._result_path:
            check_dict_like(event.body, "result_path")
            update_in(mapped.body, self._result_path, fn_result)
        else:
            mapped.body = fn_result
        return mapped

    async def _do_each(self, batch):
        """`_process` of a per-event step: its `_do_event` on each event as an `Event`."""
        for i in range(batch.n):
            event = batch.event(i)
            try:
                await self._do_event(event)
            except Exception as ex:
                if not getattr(ex, "_storey_downstream", False):
                    _set_attribute(ex, "_storey_failed_event", event)
                raise

    # ---- description
    def to_dict(self, fields=None, exclude=None):
        """The step as a dict: its class, name and arguments, as storey 1.0.6 describes a step."""
        fields = fields or getattr(self, "_dict_fields", None)
        if not fields:
            fields = list(inspect.signature(self.__init__).parameters)
        if exclude:
            fields = [f for f in fields if f not in exclude]
        args = {
            key: getattr(self, key)
            for key in fields
            if getattr(self, key, None) is not None and key not in _META_KWARGS
        }
        if "kwargs" in fields:
            kwargs = getattr(self, "kwargs", None) or self._kwargs
            args.update({key: value for key, value in kwargs.items() if key not in _META_KWARGS})
        class_path = type(self).__qualname__
        if type(self).__module__ != "__main__":
            class_path = f"{_public_module(type(self))}.{class_path}"
        struct = {"class_name": class_path, "name": self.name, "class_args": args}
        for key, attribute in (
            ("kind", "_STEP_KIND"),
            ("input_path", "_input_path"),
            ("result_path", "_result_path"),
            ("full_event", "_full_event"),
        ):
            value = getattr(self, attribute, None)
            if value is not None and (key != "full_event" or self._kwargs.get("full_event") is not None):
                struct[key] = value
        return struct

    def _describe(self, **args):
        """Records constructor arguments as storey 1.0.6's steps record them, after the keyword
        arguments given (what `to_dict` and `to_code` show)."""
        self._kwargs.update(args)

    def to_code(self):
        """Python code that builds the flow from this step on, as storey 1.0.6 writes it."""
        _, steps, tos = self._to_code(set())
        return "\n".join(steps) + "\n\n" + "\n".join(tos) + "\n"

    def _to_code(self, taken):
        """(variable name, step lines, `to` lines) of the flow from this step on."""
        base = "".join(
            f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(type(self).__name__)
        )
        i = 0
        while f"{base}{i}" in taken:
            i += 1
        var = f"{base}{i}"
        taken.add(var)
        params = ", ".join(
            f"{k}='{v}'" if isinstance(v, str) else f"{k}={v}" for k, v in self._kwargs.items()
        )
        steps = [f"{var} = {type(self).__name__}({params})"]
        tos = []
        for outlet in self._outlets:
            outlet_var, outlet_steps, outlet_tos = outlet._to_code(taken)
            steps.extend(outlet_steps)
            tos.append(f"{var}.to({outlet_var})")
            tos.extend(outlet_tos)
        return var, steps, tos

    # ---- engine
    async def _process_one_at_a_time(self, batch):
        """`_process` of a step that takes its events one at a time: each goes through the step and
        everything after it before the next; with a recovery step (or a context's push_error), an
        event whose processing raised here goes to it and the others go on as if nothing happened."""
        await self._before_one_at_a_time(batch)
        take = self._takes_batch
        if not self._takes_over_failures():
            for one in batch.one_by_one():
                await take(one)
            return
        for one in batch.one_by_one():
            try:
                await take(one)
            except Exception as ex:
                if getattr(ex, "_storey_downstream", False):
                    raise
                await self._take_over_failure(one, ex)

    async def _take_over_failure(self, one, ex):
        """Hands an event whose processing raised `ex` in this step to its recovery step, or to the
        context's push_error; raises `ex` when neither takes it. Called from the except block."""
        event = getattr(ex, "_storey_failed_event", None) or one.event(0)
        if not await self._hand_over_failure(event, ex):
            raise ex

    async def _hand_over_failure(self, event, ex):
        """Hands the `event` whose processing raised `ex` here to the recovery step (with
        origin_state and error set), or to the context's push_error (the event's result fails);
        False when neither is there. Called from the except block (push_error gets its trace)."""
        step = self._recovery_for(ex)
        if step is not None:
            event.origin_state = self.name
            event.error = ex
            await step._process(EventBatch.from_events([event]))
            return True
        push_error = getattr(self.context, "push_error", None)
        if push_error is None:
            return False
        awaitable = getattr(event, "_awaitable_result", None)
        if awaitable is not None:
            awaitable._set_error(ex)
        message = traceback.format_exc()
        if self.logger:
            self.logger.error(f"Pushing error to error stream: {ex}\n{message}")
        push_error(event, f"{ex}\n{message}", source=self.name)
        return True

    def _recovery_for(self, ex):
        """The recovery step for an exception this step raised itself (exact type for a dict)."""
        rec = self._recovery_step
        if isinstance(rec, dict):
            return rec.get(type(ex))
        return rec

    async def _emit(self, batch):
        outlets = self._outlets
        if not outlets or batch.n == 0:
            return
        try:
            if len(outlets) == 1:
                if self._one_at_a_time and batch.n > 1:
                    for one in batch.one_by_one():
                        await outlets[0]._process(one)
                else:
                    await outlets[0]._process(batch)
            elif self._one_at_a_time and batch.n > 1:
                for one in batch.one_by_one():
                    await self._fan_out(one)
            else:
                await self._fan_out(batch)
        except Exception as ex:
            # raised further down the flow: this step's recovery step does not take it
            _mark_downstream(ex)
            raise

    async def _fan_out(self, batch):
        outlets = self._outlets
        copies = [batch.branch_copy() for _ in outlets[1:]]
        # as in the reference, a branch that raises does not keep the others from the events:
        # every branch runs, then the first error fails the flow. The results of the events fail
        # at once, unless a branch before completed them: the first to complete an event wins.
        error = None
        for outlet, branch_batch in zip(outlets, [batch, *copies], strict=True):
            try:
                await outlet._process(branch_batch)
            except Exception as ex:
                if error is None:
                    error = ex
                for awaitable in batch.awaitables or ():
                    if awaitable is not None:
                        awaitable._set_error(ex)
        if error is not None:
            raise error

    async def _emit_logged(self, batch):
        """`_emit` of a step whose context is verbose: each hand-off is logged as storey logs it."""
        if batch.n:
            for outlet in self._outlets:
                for i in range(batch.n):
                    self.logger.debug(f"{self.name} -> {outlet.name} | {event_string(batch.event(i))}")
        await Flow._emit(self, batch)

    async def _terminate(self):
        self._terminations += 1
        if self._terminations < self._graph_inlets:
            return None
        if self._per_event:
            return await self._do_event(_termination_obj)
        return await self._terminate_downstream(await self._on_terminate())

    async def _terminate_downstream(self, result):
        """Terminates the outlets (and recovery steps) and combines their results with `result`."""
        outlets = self._outlets
        # steps that only take over failed events are flushed too; like the reference, the flow's
        # result comes from the outlets alone
        for step in self._side_steps():
            if step not in outlets:
                await step._terminate()
        for i, outlet in enumerate(outlets):
            outlet_result = await outlet._terminate()
            if i == 0 and result is None:
                # as the reference: the first outlet's result is where the combining starts
                result = outlet_result
            else:
                result = self._termination_result_fn(result, outlet_result)
        return result

    def _side_steps(self):
        """Steps, besides the outlets, that may receive events from this step (recovery steps)."""
        return _recovery_steps(self)

    def _downstream(self):
        steps = list(self._outlets)
        for step in self._side_steps():
            if step not in steps:
                steps.append(step)
        return steps


def _mark_downstream(ex):
    _set_attribute(ex, "_storey_downstream", True)


def _set_attribute(ex, name, value):
    try:
        setattr(ex, name, value)
    except AttributeError:
        pass


def event_string(event):
    """An event as storey's verbose logs show it."""
    text = "Event("
    if event.id:
        text += f"id={event.id}, "
    if getattr(event, "key", None):
        text += f"key={event.key}, "
    if getattr(event, "time", None):
        text += f"time={event.time}, "
    if getattr(event, "path", None):
        text += f"path={event.path}, "
    return text + f"body={event.body})"


def _public_module(cls):
    """The module storey 1.0.6 defines a step class in (the class's own for others' steps)."""
    module = cls.__module__
    if module.partition(".")[0] != _PACKAGE:
        return module
    for klass in cls.__mro__:
        if klass.__name__ in _PUBLIC_MODULE_OF_CLASS:
            return _PUBLIC_MODULE_OF_CLASS[klass.__name__]
    return _PUBLIC_MODULES.get(module.split(".")[1], module)


_PUBLIC_MODULES = {
    "engine": "storey.flow",
    "steps": "storey.flow",
    "aggregations": "storey.aggregations",
    "sources": "storey.sources",
    "targets": "storey.targets",
}
_PUBLIC_MODULE_OF_CLASS = {
    "ReduceToDataFrame": "storey.dataframe",
    "ToDataFrame": "storey.dataframe",
    "Partition": "storey.steps.partition",
    "Assert": "storey.steps.assertion",
    "SampleWindow": "storey.steps.sample",
    "ForEach": "storey.steps.foreach",
}


def _recovery_steps(step):
    rec = step._recovery_step
    if rec is None:
        return []
    if isinstance(rec, dict):
        return list(dict.fromkeys(rec.values()))
    return [rec]


def walk_graph(source):
    """All steps reachable from `source` (recovery steps included), in depth-first order."""
    seen = {}
    stack = [source]
    while stack:
        step = stack.pop()
        if id(step) in seen:
            continue
        seen[id(step)] = step
        stack.extend(reversed(step._downstream()))
    return list(seen.values())


def init_graph(source, runtime, live=False):
    """Prepares every step of the flow for a run; returns the steps."""
    steps = walk_graph(source)
    for step in steps:
        step._runtime = runtime
        step._graph_inlets = 0
        step._terminations = 0
    for step in steps:
        for outlet in step._downstream():
            outlet._graph_inlets += 1
    chosen = one_at_a_time(source, steps, live)
    for step in steps:
        step._one_at_a_time = step in chosen
        step._takes_batch = step._do_each if step._per_event else step._do
        step._process = step._process_one_at_a_time if step._one_at_a_time else step._takes_batch
        if step.verbose and step.logger:
            step._emit = step._emit_logged
    for step in steps:
        step._init()
    return steps


def one_at_a_time(source, steps, live):
    """The steps that take their events one at a time: each event goes through such a step and
    everything after it before the next one enters it, as storey runs every event. The others
    take a whole batch at once. One at a time:

    - a step whose state (a Table) a step further down shares, and a step whose branches meet
      again or share state: each event reaches the later step in the order storey gives;
    - a step that needs it itself: one with a recovery step, Recover, Complete with outlets in a
      live flow;
    - the source, when the flow holds a step that takes over failures (every event is tried
      alone), or when a live flow branches (the branches' functions see the events interleaved
      as storey runs them); then each step that branches, too, for the events a step makes of
      one event (FlatMap).
    """
    reach = _reach(steps)
    chosen = set()
    for step in steps:
        below = set()
        for outlet in step._downstream():
            below |= reach[id(outlet)]
        outlets = step._outlets
        branches_meet = any(
            reach[id(outlets[i])] & reach[id(outlets[j])]
            for i in range(len(outlets))
            for j in range(i + 1, len(outlets))
        )
        shares_state = bool({id(obj) for obj in step._state_objects()} & below)
        if shares_state or branches_meet or step._needs_one_at_a_time(live):
            chosen.add(step)
    branching = [step for step in steps if len(step._outlets) > 1]
    if live and branching:
        chosen.update(branching)
        chosen.add(source)
    if any(step._handles_errors or step._takes_over_failures() for step in steps):
        chosen.add(source)
    if source.verbose:
        chosen.add(source)
    return chosen


def _reach(steps):
    """For each step (by id): the ids of the steps and shared state objects at or after it."""
    closure = {}

    def reach(step):
        key = id(step)
        if key not in closure:
            closure[key] = set()  # guards against cycles
            found = {key} | {id(obj) for obj in step._state_objects()}
            for outlet in step._downstream():
                found |= reach(outlet)
            closure[key] = found
        return closure[key]

    for step in steps:
        reach(step)
    return closure


def build_flow(steps):
    """Builds a flow from a list of steps and returns its first step.

    Each step is connected to the one before it. A nested list is a branch off the step before it;
    the chain then continues from that same step.
    """
    if not steps:
        raise ValueError("Cannot build an empty flow: build_flow() takes a non-empty list of steps")
    first = steps[0]
    if isinstance(first, list):
        first = build_flow(first)
    current = first
    for step in steps[1:]:
        if isinstance(step, list):
            current.to(build_flow(step))
        else:
            current.to(step)
            current = step
    return first
