"""MapWithState: a user function with state, global or per key."""

from ..core.batch import EventBatch
from ..dtypes.event import Event
from ..engine.graph import Flow
from ..table.key_cache import Table, resolve_table
from .functions import check_callable, element_of, write_result
from .grouping import hashable

__all__ = ["MapWithState"]


class MapWithState(Flow):
    """Maps, or transforms, incoming events using a stateful user-provided function, and an initial
    state, which may be a database table.

    `fn(element, state)` returns `(new_element, new_state)`; the element (a body, or an `Event`
    with `full_event=True`) is passed on, and the state is what `fn` receives with the next event:

    - with `group_by_key=False`, one state for all events, starting with `initial_state` (any
      object); the step keeps the last state from one run of the flow to the next;
    - with `group_by_key=True` and a dict, the dict holds a state per event key (`initial_state[key]`,
      KeyError for a key it does not have), and each new state is stored back into it;
    - with `group_by_key=True` and a `Table`, the state of a key is the dict of static attributes
      the table holds for it (an empty dict at first), and each new state (a dict) is merged into
      it, so that `JoinWithTable` and `AggregateByKey(enrich_with=...)` see it.

    :param initial_state: initial state for the computation. If group_by_key is True, this must be
        a dictionary, a Table object, or the name of a table of the step's context (as must a name
        starting with v3io://). Any object otherwise.
    :type initial_state: dictionary or Table if group_by_key is True. Any object otherwise.
    :param fn: a function to run on each event and the current state. Must yield an event and an
        updated state.
    :type fn: Function ((Event, state)=>(Event, state))
    :param group_by_key: whether the state is computed by key. Optional. Default to False.
    :type group_by_key: boolean
    :param full_event: whether fn will receive and return an Event object or only the body
        (payload). Optional. Defaults to False (body only).
    :type full_event: boolean
    """

    def __init__(self, initial_state, fn, group_by_key=False, **kwargs):
        super().__init__(**kwargs)
        check_callable(self.name, "fn", fn)
        self._fn = fn
        self._group_by_key = bool(group_by_key)
        self._table = None
        if isinstance(initial_state, str) and (initial_state.startswith("v3io://") or self._group_by_key):
            # a table name, looked up in the context (as storey does for v3io:// names)
            initial_state = resolve_table(self.name, initial_state, self.context)
        if self._group_by_key:
            if isinstance(initial_state, Table):
                self._table = initial_state
            elif not isinstance(initial_state, dict):
                raise TypeError(
                    f"{self.name}: with group_by_key=True, initial_state must be a dict or a Table, "
                    f"got {type(initial_state).__name__}: {initial_state!r}"
                )
        self._state = initial_state

    def _state_objects(self):
        return (self._state,) if self._group_by_key else ()

    def _init(self):
        if self._table is not None:
            self._table._bind(self._runtime)

    def _close(self):
        if self._table is not None:
            self._table._unbind(self._runtime)

    async def _on_terminate(self):
        if self._table is not None:
            await self._table._end_flow(flush=True)
        return None

    async def _do(self, batch):
        paths = not self._full_event and (self._input_path or self._result_path)
        bodies = None if self._full_event else batch.bodies_to_change()
        inputs = batch.events() if self._full_event else bodies
        if paths:
            inputs = _Elements(bodies, self._input_path or None)
        outputs = []
        try:
            if not self._group_by_key:
                self._map_global(inputs, outputs)
            elif self._table is not None:
                await self._table._ensure_loaded(batch.keys)
                self._map_by_table_key(inputs, batch.keys, outputs)
            else:
                self._map_by_dict_key(inputs, batch.keys, outputs)
            error = None
        except Exception as ex:
            error = ex
        if self._full_event:
            for i, output in enumerate(outputs):
                if not isinstance(output, Event):
                    del outputs[i:]
                    if error is None:
                        error = TypeError(
                            f"{self.name}: with full_event=True, fn must return (Event, state), "
                            f"got a {type(output).__name__} as the event: {output!r}"
                        )
                    break
            out = EventBatch.from_events(outputs)
        else:
            if self._result_path:
                written = []
                try:
                    for body, output in zip(bodies, outputs, strict=False):
                        written.append(write_result(body, self._result_path, output))
                except Exception as ex:
                    error = ex
                outputs = written
            out = batch.with_first_bodies(outputs)
        if out.n:
            await self._emit(out)
        if self._table is not None:
            await self._table._written()
        if error is not None:
            error.add_note(f"raised in step {self.name}")
            raise error

    def _map_global(self, inputs, outputs):
        fn = self._fn
        state = self._state
        for element in inputs:
            output, state = fn(element, state)
            self._state = state
            outputs.append(output)

    def _map_by_dict_key(self, inputs, keys, outputs):
        fn = self._fn
        states = self._state
        for element, key in zip(inputs, keys, strict=True):
            key = hashable(key)
            output, states[key] = fn(element, states[key])
            outputs.append(output)

    def _map_by_table_key(self, inputs, keys, outputs):
        fn = self._fn
        table = self._table
        for element, key in zip(inputs, keys, strict=True):
            state = table._get_static(key)
            fresh = state is None
            if fresh:
                state = {}
            output, new_state = fn(element, state)
            if not isinstance(new_state, dict):
                raise TypeError(
                    f"{self.name}: the state kept in a Table must be a dict, "
                    f"fn returned a {type(new_state).__name__}: {new_state!r}"
                )
            if fresh and table._get_static(key) is None:
                table._set_static(key, state)
            table._update_static(key, new_state)
            outputs.append(output)


class _Elements:
    """The values at input_path of bodies, read as they are iterated (a body that cannot hold
    input_path raises when its turn comes)."""

    def __init__(self, bodies, input_path):
        self._bodies = bodies
        self._input_path = input_path

    def __iter__(self):
        for body in self._bodies:
            yield element_of(body, self._input_path)
