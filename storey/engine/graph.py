"""The flow graph: the `Flow` step base class, wiring (`to`, `build_flow`), termination, and how
events pass from step to step.

A step processes one `EventBatch` per call (`_do`) and sends its output batch to its outlets
(`_emit`). Steps are coroutines so that a step may wait on I/O, but most never do: a flow in
which no step can suspend runs inline, in the thread that emits (see `storey.engine.runtime`).

Whether a step takes a batch at once or its events one at a time is decided in one place, when a
run starts (`init_graph`, see `one_at_a_time`): a step then receives batches through its
`_process`, which is its `_do` itself or `_process_one_at_a_time`.
"""

from ..core.batch import DEFAULT_META


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

    :param recovery_step: a step, or a dict from exception type to step, that receives the events
        whose processing raised (with `event.error` set) instead of failing the flow. Optional.
    :param termination_result_fn: combines the termination results of the step's outlets.
    :param context: a `Context` holding parameters, secrets and tables.
    :param name: name of this step, as it should appear in logs. Defaults to the class name.
    :param full_event: whether user functions receive and return `Event` objects (True) or only
        bodies (False, the default).
    """

    _legal_first_step = False
    # True for steps that await I/O or executors: a flow holding one runs on its event loop.
    _may_suspend = False
    # True for steps that take over events whose processing failed further down (Recover).
    _handles_errors = False
    # True for steps that keep a thread of their own busy writing (ParquetTarget): steps before them
    # leave the second core to it.
    _writes_in_a_thread = False

    def __init__(
        self,
        recovery_step=None,
        termination_result_fn=_first_not_none,
        context=None,
        name=None,
        full_event=None,
        **kwargs,
    ):
        self._outlets = []
        self._inlets = []
        self._recovery_step = recovery_step
        self._termination_result_fn = termination_result_fn
        self.context = context
        self.name = name or type(self).__name__
        self._full_event = bool(full_event)
        self._kwargs = kwargs
        self._runtime = None
        self._graph_inlets = 0
        self._terminations = 0
        # decided by init_graph when a run starts
        self._one_at_a_time = False
        self._process = self._do

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"

    # ---- wiring
    def to(self, outlet):
        """Adds `outlet` after this step and returns it, so that calls can be chained."""
        if not isinstance(outlet, Flow):
            raise TypeError(f"{self.name}.to(): expected a step (a Flow), got {type(outlet).__name__}")
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
        return self._recovery_step is not None or self._handles_errors

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

    # ---- engine
    async def _process_one_at_a_time(self, batch):
        """`_process` of a step that takes its events one at a time: each goes through the step and
        everything after it before the next; with a recovery step, an event whose processing
        raised here goes to it and the others go on as if nothing happened."""
        await self._before_one_at_a_time(batch)
        if self._recovery_step is None:
            for one in batch.one_by_one():
                await self._do(one)
            return
        for one in batch.one_by_one():
            try:
                await self._do(one)
            except Exception as ex:
                step = None if getattr(ex, "_storey_downstream", False) else self._recovery_for(ex)
                if step is None:
                    raise
                meta = [dict(m or DEFAULT_META) for m in (one.meta or [None] * one.n)]
                for m in meta:
                    m["error"] = ex
                failed = one.shallow_copy()
                failed.meta = meta
                await step._process(failed)

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

    async def _terminate(self):
        self._terminations += 1
        if self._terminations < self._graph_inlets:
            return None
        result = await self._on_terminate()
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
    try:
        ex._storey_downstream = True
    except AttributeError:
        pass


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
        step._process = step._process_one_at_a_time if step._one_at_a_time else step._do
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
    if any(step._recovery_step is not None or step._handles_errors for step in steps):
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
