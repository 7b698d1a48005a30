"""Group keys of events, for steps that keep state per group (Batch, SampleWindow).

A group key option is None (one group for all events), '$key' (the event key), the name of a
body field, or a function of the `Event`.
"""

EVENT_KEY = "$key"


def check_group_key(step_name, key):
    """Raises ValueError unless `key` is a valid group key option."""
    if key is None or isinstance(key, str) or callable(key):
        return
    raise ValueError(
        f"{step_name}: key must be None, '$key', a body field name or a function of the event, "
        f"got {type(key).__name__}: {key!r}"
    )


def hashable(key):
    """`key` in a form usable as a dict key (list keys become tuples)."""
    if isinstance(key, list):
        return tuple(hashable(k) for k in key)
    return key


def group_keys(batch, key):
    """The group key of each event of `batch`, for a key option other than None.

    Returns (keys, error): when extracting the key of event i raises (a missing body field is a
    KeyError, a body that is not a dict a TypeError), `keys` holds the keys of the events before
    it and `error` the exception, so that the caller can still process those events.
    """
    if key == EVENT_KEY:
        return [hashable(k) for k in batch.keys], None
    if isinstance(key, str):
        return _field_keys(batch, key)
    keys = []
    try:
        for event in batch.events():
            keys.append(hashable(key(event)))
    except Exception as ex:
        return keys, ex
    return keys, None


def _field_keys(batch, name):
    columns = batch.columns
    if columns is not None and name in columns:
        if columns.absent_rows(name) is None:
            return [hashable(k) for k in columns.column_list(name)], None
    keys = []
    try:
        for body in batch.bodies_to_read():
            keys.append(hashable(body[name]))
    except Exception as ex:
        return keys, ex
    return keys, None
