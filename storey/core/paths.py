"""Dotted paths into dict bodies (`input_path='a.b'`, `result_path='out.x'`), as storey 1.0.6's
steps read and write them."""


def _parts(path):
    return path.split(".") if isinstance(path, str) else list(path)


def get_in(obj, path, default=None):
    """The value at `path` (a dotted string or a list of keys) in `obj`; `default` where a level
    is missing or empty."""
    for key in _parts(path):
        if not obj or key not in obj:
            return default
        obj = obj[key]
    return obj


def update_in(obj, path, value):
    """Sets the value at `path` in `obj`, making a dict for each missing (or None) level."""
    parts = _parts(path)
    for key in parts[:-1]:
        inner = obj.get(key)
        if inner is None:
            inner = obj[key] = {}
        obj = inner
    obj[parts[-1]] = value


def split_container_path(path):
    """(container, path inside it) of a V3IO path, as storey 1.0.6 splits it: '/container/dir/t'
    gives ('container', '/dir/t'), 'container' gives ('container', '/')."""
    path = path.lstrip("/")
    container, sep, rest = path.partition("/")
    return container, f"/{rest}" if sep else "/"


def check_dict_like(body, param):
    """Raises the reference's TypeError when a body cannot hold `input_path`/`result_path`."""
    if not hasattr(body, "__getitem__"):
        raise TypeError(f"{param} parameter supports only dict-like event bodies")
