"""Checks of the parameters the replay sources share; errors name the step, parameter and value."""

import os


def check_field(step, param, value, allow_int=False, allow_list=False):
    """A key_field/time_field/id_field value: a name (or an int index, or a list of those)."""
    if value is None:
        return None
    if allow_list and isinstance(value, list | tuple):
        if not value:
            raise ValueError(f"{step}: {param} must not be an empty list")
        return [check_field(step, param, v, allow_int) for v in value]
    if isinstance(value, str):
        return value
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{step}: {param} must be a field name or a non-negative index, got {value!r}")
        return value
    kinds = (
        "a field name" + (" or index" if allow_int else "") + (" (or a list of them)" if allow_list else "")
    )
    raise TypeError(f"{step}: {param} must be {kinds}, got {type(value).__name__} {value!r}")


def check_paths(step, paths):
    """One path or a list of paths (str or os.PathLike), as a list of str."""
    if isinstance(paths, str | os.PathLike):
        return [os.fspath(paths)]
    try:
        items = list(paths)
    except TypeError:
        raise TypeError(
            f"{step}: paths must be a path or a list of paths, got {type(paths).__name__}"
        ) from None
    for p in items:
        if not isinstance(p, str | os.PathLike):
            raise TypeError(f"{step}: paths must be a path or a list of paths, got an item {p!r}")
    return [os.fspath(p) for p in items]
