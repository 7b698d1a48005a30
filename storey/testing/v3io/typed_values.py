"""Attribute values of V3IO items: how the web API writes them in JSON ({"N": "1.5"}, {"S": "a"},
{"B": base64}, {"BOOL": true}, {"TS": "secs:nsecs"}) and what the emulator keeps of them.

Arrays are blobs in the platform's array encoding (a magic header, the byte length, the element
type, then the elements); the emulator keeps a written blob as it is, and an `Array` where an
update expression made or changed one, and gives both back as such blobs.
"""

import base64
import math
import struct
from dataclasses import dataclass

__all__ = ["Array", "Timestamp", "TypedValueError", "decode_attributes", "encode_attributes", "readable"]

_ARRAY_MAGIC = struct.pack("<II", 11223344, 1)
_LONG = 259
_DOUBLE = 261
_KINDS = {_LONG: ("l", "long"), _DOUBLE: ("d", "double")}


class TypedValueError(ValueError):
    """A typed attribute value the web API does not accept."""


@dataclass(frozen=True, order=True)
class Timestamp:
    """A TS value: seconds and nanoseconds since the epoch."""

    secs: int
    nsecs: int

    def text(self):
        return f"{self.secs}:{self.nsecs}"


class Array:
    """An array attribute: its elements and their kind ('double' or 'long')."""

    __slots__ = ("kind", "values")

    def __init__(self, kind, values):
        self.kind = kind
        self.values = values

    def copy(self):
        return Array(self.kind, list(self.values))

    def cast(self, value):
        """`value` as an element of this array."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypedValueError(f"an element of a {self.kind} array must be a number, got {value!r}")
        if self.kind == "long":
            if isinstance(value, float) and not value.is_integer():
                raise TypedValueError(f"an element of a long array must be an integer, got {value!r}")
            return int(value)
        return float(value)

    def to_bytes(self):
        code = "d" if self.kind == "double" else "q"
        operand = _DOUBLE if self.kind == "double" else _LONG
        n = len(self.values)
        return _ARRAY_MAGIC + struct.pack(f"<II{n}{code}", 8 * n, operand, *self.values)

    def __eq__(self, other):
        return (
            isinstance(other, Array) and self.kind == other.kind and _same_elements(self.values, other.values)
        )

    def __repr__(self):
        return f"Array({self.kind!r}, {self.values!r})"


def _same_elements(a, b):
    return len(a) == len(b) and all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))


def array_of_blob(data):
    """The Array a blob holds in the platform's array encoding, or None when it holds none."""
    if len(data) < 16 or not data.startswith(_ARRAY_MAGIC):
        return None
    size, operand = struct.unpack_from("<II", data, 8)
    kind = _KINDS.get(operand)
    if kind is None or size % 8 or len(data) != 16 + size:
        return None
    code = "d" if kind[0] == "d" else "q"
    return Array(kind[1], list(struct.unpack_from(f"<{size // 8}{code}", data, 16)))


def _number(text):
    if not isinstance(text, str):
        if isinstance(text, int | float) and not isinstance(text, bool):
            return text
        raise TypedValueError(f"a number (N) must be given as text, got {text!r}")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise TypedValueError(f"{text!r} is not a number") from None
    return value


def decode_value(name, typed):
    """The value of attribute `name` from its JSON form ({"N": "1"} ...)."""
    if not isinstance(typed, dict) or len(typed) != 1:
        raise TypedValueError(
            f"attribute {name!r}: a value must be an object with one type key, got {typed!r}"
        )
    ((kind, value),) = typed.items()
    if kind == "N":
        return _number(value)
    if kind == "S":
        if not isinstance(value, str):
            raise TypedValueError(f"attribute {name!r}: a string (S) must be a JSON string, got {value!r}")
        return value
    if kind == "BOOL":
        if not isinstance(value, bool):
            raise TypedValueError(f"attribute {name!r}: a BOOL must be true or false, got {value!r}")
        return value
    if kind == "B":
        if not isinstance(value, str):
            raise TypedValueError(f"attribute {name!r}: a blob (B) must be base64 text, got {value!r}")
        try:
            data = base64.b64decode(value, validate=True)
        except ValueError:
            raise TypedValueError(f"attribute {name!r}: {value[:40]!r} is not base64") from None
        # (an array stays a blob until an expression indexes it)
        return data
    if kind == "TS":
        return parse_timestamp(name, value)
    raise TypedValueError(f"attribute {name!r}: unknown value type {kind!r}")


def parse_timestamp(name, text):
    if isinstance(text, str):
        secs, colon, nsecs = text.partition(":")
        if colon and secs.lstrip("-").isdigit() and nsecs.isdigit() and int(nsecs) < 10**9:
            return Timestamp(int(secs), int(nsecs))
    raise TypedValueError(f"attribute {name!r}: a timestamp (TS) must be 'secs:nsecs', got {text!r}")


def decode_attributes(typed):
    if not isinstance(typed, dict):
        raise TypedValueError(f"Item must be an object of attributes, got {typed!r}")
    return {name: decode_value(name, value) for name, value in typed.items()}


def encode_value(value):
    """The JSON form of a value."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, float):
        return {"N": _float_text(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Timestamp):
        return {"TS": value.text()}
    if isinstance(value, Array):
        return {"B": base64.b64encode(value.to_bytes()).decode()}
    if isinstance(value, bytes | bytearray):
        return {"B": base64.b64encode(bytes(value)).decode()}
    raise TypedValueError(f"cannot encode {value!r}")


def _float_text(value):
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    return repr(value)


def readable(attributes):
    """`attributes` with the blobs that hold arrays as `Array`s (for tests and tools)."""
    out = {}
    for name, value in attributes.items():
        if isinstance(value, bytes):
            value = array_of_blob(value) or value
        out[name] = value
    return out


def encode_attributes(attributes):
    return {name: encode_value(value) for name, value in attributes.items()}
