"""The form keys take inside a table."""


def table_key(key):
    """A key as a table holds it: list keys become their items joined with '.'."""
    if isinstance(key, list):
        return ".".join(str(part) for part in key)
    return key
