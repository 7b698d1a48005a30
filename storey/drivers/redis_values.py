"""How RedisDriver stores static attribute values as hash field values, and reads them back with
their types: JSON text (numbers, booleans, strings, lists and dicts, NaN as `NaN`), and, for what
JSON has no type of, a tag JSON text never starts with: `@datetime:2024-05-01T12:30:00+00:00`,
`@date:2024-05-01`, `@timedelta:DAYS:SECONDS:MICROSECONDS`, `@bytes:BASE64`."""

import base64
import datetime
import json

import numpy as np

from .v3io_driver import v3io_value

__all__ = ["decode_value", "encode_value"]

_JSON_TYPES = (bool, int, float, str, list, tuple, dict)


def encode_value(value):
    """The bytes a hash field holds for the attribute `value` (not None); a TypeError says what
    cannot be stored."""
    value = v3io_value(value)
    if hasattr(value, "to_pytimedelta"):  # pandas.Timedelta
        value = value.to_pytimedelta()
    if isinstance(value, datetime.datetime):
        return b"@datetime:" + value.isoformat().encode()
    if isinstance(value, datetime.date):
        return b"@date:" + value.isoformat().encode()
    if isinstance(value, datetime.timedelta):
        return f"@timedelta:{value.days}:{value.seconds}:{value.microseconds}".encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return b"@bytes:" + base64.b64encode(bytes(value))
    if not isinstance(value, _JSON_TYPES):
        raise TypeError(f"{type(value).__name__} {value!r} cannot be stored")
    return json.dumps(value, default=_json_default, ensure_ascii=False).encode()


def decode_value(data):
    """The attribute value a hash field's bytes `data` hold; what another program stored as plain
    text (not JSON) is read as that text (bytes when it is not UTF-8)."""
    if data[:1] != b"@":
        try:
            return json.loads(data)
        except ValueError:
            return _text(data)
    tag, _, text = data.decode(errors="replace").partition(":")
    try:
        if tag == "@datetime":
            return datetime.datetime.fromisoformat(text)
        if tag == "@date":
            return datetime.date.fromisoformat(text)
        if tag == "@timedelta":
            days, seconds, microseconds = (int(part) for part in text.split(":"))
            return datetime.timedelta(days, seconds, microseconds)
        if tag == "@bytes":
            return base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        pass
    return _text(data)


def _text(data):
    try:
        return data.decode()
    except UnicodeDecodeError:
        return bytes(data)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(
        f"{type(value).__name__} {value!r} cannot be stored inside a list or dict (only JSON values can)"
    )
