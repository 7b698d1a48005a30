"""SampleWindow: one event out of every window of window_size events, per group."""

import numbers
from collections.abc import Callable
from enum import Enum
from typing import Any

import numpy as np

from ..dtypes.event import Event
from ..engine.graph import Flow
from .grouping import check_group_key, group_keys

__all__ = ["EmitPeriod", "SampleWindow"]


class EmitPeriod(Enum):
    """Which event of each window `SampleWindow` emits."""

    FIRST = 1
    LAST = 2


class SampleWindow(Flow):
    """Emits a single event in a window of window_size events, in accordance with emit_period and
    emit_before_termination.

    :param window_size: the size of the window to sample a single event from (an int above 1).
    :param emit_period: which event to emit for each window (default: EmitPeriod.FIRST).
        EmitPeriod.FIRST emits the first event of every window of window_size events;
        EmitPeriod.LAST emits the last one.
    :param emit_before_termination: whether, on termination, the step emits the last event it saw
        (over all groups) if it was not emitted already (default: False).
    :param key: the key by which events are sampled. By default (None), events are not sampled by
        key. '$key' samples by `Event.key`, a string by `Event.body[key]`, and a function of the
        `Event` by what it returns.
    :param name: name of this step, as it should appear in logs. Defaults to class name
        (SampleWindow).
    """

    def __init__(
        self,
        window_size: int,
        emit_period: EmitPeriod = EmitPeriod.FIRST,
        emit_before_termination: bool = False,
        key: str | Callable[[Event], Any] | None = None,
        **kwargs,
    ):
        kwargs["full_event"] = True
        super().__init__(**kwargs)
        if isinstance(window_size, bool) or not isinstance(window_size, numbers.Integral):
            raise TypeError(
                f"{self.name}: window_size must be an int above 1, "
                f"got {type(window_size).__name__}: {window_size!r}"
            )
        if window_size <= 1:
            raise ValueError(f"{self.name}: window_size must be an int above 1, got {window_size!r}")
        if not isinstance(emit_period, EmitPeriod):
            raise ValueError(
                f"{self.name}: emit_period must be an EmitPeriod (EmitPeriod.FIRST or EmitPeriod.LAST), "
                f"got {type(emit_period).__name__}: {emit_period!r}"
            )
        check_group_key(self.name, key)
        self._window_size = int(window_size)
        self._emit_period = emit_period
        self._emit_before_termination = bool(emit_before_termination)
        self._key = key
        self._counts = {}
        self._count = 0
        self._last = None

    def _init(self):
        self._counts = {}
        self._count = 0
        # the last event seen, as a batch of one, while it has not been emitted
        self._last = None

    async def _do(self, batch):
        error = None
        if self._key is None:
            positions = self._count + np.arange(batch.n, dtype=np.int64)
            self._count += batch.n
            n = batch.n
        else:
            keys, error = group_keys(batch, self._key)
            n = len(keys)
            positions = np.empty(n, dtype=np.int64)
            counts = self._counts
            for i, key in enumerate(keys):
                count = counts.get(key, 0)
                positions[i] = count
                counts[key] = count + 1
        if self._emit_period is EmitPeriod.FIRST:
            selected = np.flatnonzero(positions % self._window_size == 0)
        else:
            selected = np.flatnonzero(positions % self._window_size == self._window_size - 1)
        if n:
            emitted_last = len(selected) and selected[-1] == n - 1
            self._last = None if emitted_last else batch.take([n - 1])
        if len(selected):
            await self._emit(batch.take(selected.tolist()))
        if error is not None:
            error.add_note(f"raised in step {self.name} while extracting the sampling key")
            raise error

    async def _on_terminate(self):
        last, self._last = self._last, None
        if self._emit_before_termination and last is not None:
            await self._emit(last)
        return None
