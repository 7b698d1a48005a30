"""Recover: routes the events that made a later step raise to steps that handle them."""

from ..engine.graph import Flow

__all__ = ["Recover"]


class Recover(Flow):
    """Passes events on unchanged; when processing an event raises further down the flow, and the
    exception's type is a key of `exception_to_downstream`, the event goes to that key's step
    instead of failing the flow. Other exceptions still fail the flow.

    The event the handling step receives is the one that reached Recover (with whatever changes
    later steps made to its body in place). The exception type must match exactly: a handler for
    `Exception` does not take a `ValueError`.

    :param exception_to_downstream: dict from exception type to the step that takes over events
        whose processing raised that exception.
    :param name: name of this step, as it should appear in logs. Defaults to class name (Recover).
    """

    # the engine feeds events one at a time into a flow holding a step that takes over failures
    _handles_errors = True

    def __init__(self, exception_to_downstream, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(exception_to_downstream, dict):
            raise TypeError(
                f"{self.name}: exception_to_downstream must be a dict from exception type to step, "
                f"got {type(exception_to_downstream).__name__}: {exception_to_downstream!r}"
            )
        for ex_type, step in exception_to_downstream.items():
            if not (isinstance(ex_type, type) and issubclass(ex_type, BaseException)):
                raise TypeError(
                    f"{self.name}: exception_to_downstream keys must be exception types, got {ex_type!r}"
                )
            if not isinstance(step, Flow):
                raise TypeError(
                    f"{self.name}: exception_to_downstream[{ex_type.__name__}] must be a step (a Flow), "
                    f"got {type(step).__name__}"
                )
        self._exception_to_downstream = dict(exception_to_downstream)

    def _side_steps(self):
        steps = super()._side_steps()
        for step in self._exception_to_downstream.values():
            if step not in steps:
                steps.append(step)
        return steps

    async def _do(self, batch):
        # the engine hands this step one event at a time (_handles_errors)
        try:
            await self._emit(batch)
        except Exception as ex:
            step = self._exception_to_downstream.get(type(ex))
            if step is None:
                raise
            await step._process(batch)
