"""Checks of step parameters that several steps share; errors name the step, the parameter and the
bad value (TypeError for a value of the wrong type, ValueError for one out of range)."""

import numbers


def check_positive_int(step, param, value):
    """`value` as an int, after checking it is an int of at least 1 (bools are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{step}: {param} must be a positive int, got {type(value).__name__}: {value!r}")
    if value < 1:
        raise ValueError(f"{step}: {param} must be a positive int, got {value!r}")
    return int(value)


def check_storage_options(step, value):
    """`value` as given, after checking it is a dict or None (a `storage_options` parameter)."""
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"{step}: storage_options must be a dict, got {type(value).__name__}: {value!r}")
    return value


def check_seconds(step, param, value):
    """`value` as given, after checking it is a number of seconds, not negative (bools are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{step}: {param} must be a number of seconds, got {type(value).__name__}: {value!r}")
    if value < 0:
        raise ValueError(f"{step}: {param} must not be negative, got {value!r}")
    return value
