"""Emit policies: when AggregateByKey passes events on, and their dict form."""

import enum
import numbers

__all__ = [
    "EmissionType",
    "EmitAfterDelay",
    "EmitAfterMaxEvent",
    "EmitAfterPeriod",
    "EmitAfterWindow",
    "EmitEveryEvent",
    "EmitPolicy",
    "emit_policy_from",
]


class EmissionType(enum.Enum):
    """Whether an emission carries all the features (All) or only those that changed (Incremental)."""

    All = 1
    Incremental = 2


def _check_emission_type(cls_name, emission_type):
    if not isinstance(emission_type, EmissionType):
        raise TypeError(
            f"{cls_name}: emission_type must be an EmissionType, got "
            f"{type(emission_type).__name__}: {emission_type!r}"
        )


def _check_seconds(cls_name, param, value, optional):
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
        raise ValueError(f"{cls_name}: {param} must be a number of seconds >= 0, got {value!r}")


class EmitPolicy:
    """Base class of the policies that decide when AggregateByKey emits events."""

    def __init__(self, emission_type=EmissionType.All):
        _check_emission_type(type(self).__name__, emission_type)
        self.emission_type = emission_type

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class EmitEveryEvent(EmitPolicy):
    """Emit every event"""

    @staticmethod
    def name():
        return "everyEvent"


class EmitAfterMaxEvent(EmitPolicy):
    """Emit the Nth event of each key (the Nth, 2Nth, ...), with its features.

    :param max_events: Which number of event to emit
    :param timeout_secs: Emit event after timeout expires even if it didn't reach max_events event
        (Optional): every timeout_secs seconds, the latest event of each key that has not been
        emitted yet is emitted (with the features it had when it arrived).
    """

    def __init__(self, max_events, timeout_secs=None, emission_type=EmissionType.All):
        super().__init__(emission_type)
        if isinstance(max_events, bool) or not isinstance(max_events, numbers.Integral) or max_events < 1:
            raise ValueError(f"EmitAfterMaxEvent: max_events must be a positive int, got {max_events!r}")
        if timeout_secs is not None and (
            isinstance(timeout_secs, bool) or not isinstance(timeout_secs, numbers.Real) or timeout_secs <= 0
        ):
            raise ValueError(
                "EmitAfterMaxEvent: timeout_secs must be a positive number of seconds or None, "
                f"got {timeout_secs!r}"
            )
        self.max_events = int(max_events)
        self.timeout_secs = timeout_secs

    @staticmethod
    def name():
        return "maxEvents"


class EmitAfterPeriod(EmitPolicy):
    """Emit event for next step after each period ends.

    A wall-clock timer: when a period of the aggregation ends (plus `delay_in_seconds`), each key
    that received events during it emits one event with its features at that time.

    :param delay_in_seconds: Delay event emission by seconds (Optional)
    """

    def __init__(self, delay_in_seconds=0, emission_type=EmissionType.All):
        super().__init__(emission_type)
        _check_seconds("EmitAfterPeriod", "delay_in_seconds", delay_in_seconds, optional=True)
        self.delay_in_seconds = delay_in_seconds

    @staticmethod
    def name():
        return "afterPeriod"


class EmitAfterWindow(EmitPolicy):
    """Emit event for next step after each window ends.

    A wall-clock timer, like EmitAfterPeriod, at the end of each smallest window.

    :param delay_in_seconds: Delay event emission by seconds (Optional)
    """

    def __init__(self, delay_in_seconds=0, emission_type=EmissionType.All):
        super().__init__(emission_type)
        _check_seconds("EmitAfterWindow", "delay_in_seconds", delay_in_seconds, optional=True)
        self.delay_in_seconds = delay_in_seconds

    @staticmethod
    def name():
        return "afterWindow"


class EmitAfterDelay(EmitPolicy):
    """Emit each key's features `delay_in_seconds` seconds (wall clock) after it received events.

    :param delay_in_seconds: Delay event emission by seconds
    """

    def __init__(self, delay_in_seconds, emission_type=EmissionType.All):
        super().__init__(emission_type)
        _check_seconds("EmitAfterDelay", "delay_in_seconds", delay_in_seconds, optional=False)
        self.delay_in_seconds = delay_in_seconds

    @staticmethod
    def name():
        return "afterDelay"


def emit_policy_from(step_name, policy):
    """The EmitPolicy given as an object or in dict form ({'mode': 'maxEvents', 'maxEvents': 5},
    {'mode': 'afterPeriod', 'delay': 10}, ...)."""
    if isinstance(policy, EmitPolicy):
        return policy
    if not isinstance(policy, dict):
        raise TypeError(
            f"{step_name}: emit_policy parameter must be of type EmitPolicy, or dict. "
            f"Found {type(policy)} instead."
        )
    args = dict(policy)
    if "mode" not in args:
        raise ValueError(f"{step_name}: an emit_policy dict needs a 'mode', got {policy!r}")
    mode = args.pop("mode")
    if mode == EmitEveryEvent.name():
        result = EmitEveryEvent()
    elif mode == EmitAfterMaxEvent.name():
        if "maxEvents" not in args:
            raise ValueError(f"{step_name}: maxEvents parameter must be specified for maxEvents emit policy")
        result = EmitAfterMaxEvent(args.pop("maxEvents"))
    elif mode == EmitAfterDelay.name():
        if "delay" not in args:
            raise ValueError(f"{step_name}: delay parameter must be specified for afterDelay emit policy")
        result = EmitAfterDelay(args.pop("delay"))
    elif mode in (EmitAfterPeriod.name(), EmitAfterWindow.name()):
        cls = EmitAfterPeriod if mode == EmitAfterPeriod.name() else EmitAfterWindow
        result = cls(args.pop("delay", 0))
    else:
        raise TypeError(
            f"{step_name}: unsupported emit policy type: {mode!r} (valid modes: everyEvent, maxEvents, "
            "afterPeriod, afterWindow, afterDelay)"
        )
    if args:
        raise ValueError(f"{step_name}: got unexpected arguments for emit policy: {args!r}")
    return result
