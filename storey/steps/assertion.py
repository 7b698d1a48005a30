"""Assert: checks on the events passing a point of a flow, for tests."""

import numbers
import operator
from collections.abc import Collection

from ..engine.graph import Flow
from .functions import check_callable

__all__ = ["Assert"]

_COUNT_OPERATORS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}


def _contains_all(received, expected):
    return all(item in received for item in expected)


def _contains_any(received, expected):
    return any(item in received for item in expected)


def _contains_none(received, expected):
    return not any(item in received for item in expected)


def _match_exactly(received, expected):
    return (
        len(received) == len(expected)
        and all(item in received for item in expected)
        and all(item in expected for item in received)
    )


_CONTENT_CHECKS = {
    "all": _contains_all,
    "any": _contains_any,
    "none": _contains_none,
    "exactly": _match_exactly,
}


# how a failed content check names itself in its message
_CONTENT_WORDS = {"all": "all of", "any": "any of", "none": "none of", "exactly": "exactly"}


class Assert(Flow):
    """Exposes an API for testing the flow between steps.

    Events pass through unchanged. Each method adds a check and returns the step, so that checks
    can be chained: `Assert().each_event(lambda body: body['v'] > 0).greater_than(3)`.

    - `each_event(predicate)` checks every event as it passes (bodies, or `Event` objects with
      `full_event=True`): the first event for which a predicate is false fails the flow with an
      AssertionError, and does not pass on.
    - `exactly(n)`, `greater_than(n)`, `greater_or_equal_to(n)`, `less_than(n)`,
      `less_or_equal_to(n)` check the number of events that passed, and `contains_all_of(items)`,
      `contains_any_of(items)`, `contains_none_of(items)`, `match_exactly(items)` what passed
      (compared with ==, in any order), when the flow terminates; the first failing check, in the
      order they were added, fails the flow with an AssertionError.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._predicates = []
        # checks made at termination, in the order they were added: (kind, operator, expected)
        self._final_checks = []
        self._count = 0
        self._received = []

    def _init(self):
        self._count = 0
        self._received = []

    # ---- building the checks
    def each_event(self, predicate):
        """Checks that `predicate` holds for every event (body, or `Event` with full_event)."""
        check_callable(self.name, "predicate", predicate)
        self._predicates.append(predicate)
        return self

    def _add_count(self, op, expected):
        if isinstance(expected, bool) or not isinstance(expected, numbers.Integral):
            raise TypeError(
                f"{self.name}: the expected event count must be an int, "
                f"got {type(expected).__name__}: {expected!r}"
            )
        self._final_checks.append(("count", op, expected))
        return self

    def exactly(self, expected):
        """Checks that exactly `expected` events passed."""
        return self._add_count("==", expected)

    def greater_than(self, expected):
        """Checks that more than `expected` events passed."""
        return self._add_count(">", expected)

    def greater_or_equal_to(self, expected):
        """Checks that at least `expected` events passed."""
        return self._add_count(">=", expected)

    def less_than(self, expected):
        """Checks that fewer than `expected` events passed."""
        return self._add_count("<", expected)

    def less_or_equal_to(self, expected):
        """Checks that at most `expected` events passed."""
        return self._add_count("<=", expected)

    def _add_content(self, kind, expected):
        if not isinstance(expected, Collection):
            raise TypeError(
                f"{self.name}: the expected events must be a collection (a list, a tuple, ...), "
                f"got {type(expected).__name__}: {expected!r}"
            )
        self._final_checks.append(("content", kind, expected))
        return self

    def contains_all_of(self, expected):
        """Checks that every item of `expected` is among the events that passed."""
        return self._add_content("all", expected)

    def contains_any_of(self, expected):
        """Checks that at least one item of `expected` is among the events that passed."""
        return self._add_content("any", expected)

    def contains_none_of(self, expected):
        """Checks that no item of `expected` is among the events that passed."""
        return self._add_content("none", expected)

    def match_exactly(self, expected):
        """Checks that the events that passed are the items of `expected`, in any order: as many
        of them, each one among `expected` and each item of `expected` among them."""
        return self._add_content("exactly", expected)

    # ---- checking
    async def _do(self, batch):
        keeps_elements = any(kind == "content" for kind, _, _ in self._final_checks)
        if not self._predicates and not keeps_elements:
            self._count += batch.n
            await self._emit(batch)
            return
        elements = batch.events() if self._full_event else batch.bodies_to_change()
        failed = None
        error = None
        try:
            for i, element in enumerate(elements):
                for predicate in self._predicates:
                    if not predicate(element):
                        failed = i
                        error = AssertionError(f"Predicate results in False for Event {element}")
                        break
                if error is not None:
                    break
        except Exception as ex:
            failed = i
            error = ex
            error.add_note(f"raised in step {self.name}")
        passed = batch.n if failed is None else failed
        self._count += passed
        if keeps_elements:
            self._received.extend(elements[:passed])
        if passed:
            await self._emit(batch.slice(0, passed))
        if error is not None:
            raise error

    async def _on_terminate(self):
        count = self._count
        received = self._received
        for kind, op, expected in self._final_checks:
            if kind == "count":
                if not _COUNT_OPERATORS[op](count, expected):
                    raise AssertionError(f"Expected event count {op} {expected}, got {count} instead")
            elif not _CONTENT_CHECKS[op](received, expected):
                raise AssertionError(f"Expected {_CONTENT_WORDS[op]} {received} in {expected}")
        return None
