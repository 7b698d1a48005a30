"""Steps that reshape dict bodies without user code: ReifyMetadata (event metadata into the body)
and Rename (body fields renamed).

Both work on columns when the bodies are held as columns, and on the dict rows otherwise.
"""

from collections.abc import Iterable, Mapping

import numpy as np

from ..core.batch import DEFAULT_META
from ..engine.graph import Flow

__all__ = ["ReifyMetadata", "Rename"]

EVENT_ATTRIBUTES = ("body", "key", "time", "id", *DEFAULT_META)


def _object_array(values):
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _attribute_values(batch, attribute):
    """The values of an `Event` attribute for every event of `batch` (a list)."""
    if attribute == "key":
        return batch.keys
    if attribute == "time":
        return batch.time_values
    if attribute == "id":
        return batch.ids
    if attribute == "body":
        return batch.bodies_to_change()
    meta = batch.meta
    if meta is None:
        return [DEFAULT_META[attribute]] * batch.n
    return [(m or DEFAULT_META)[attribute] for m in meta]


class ReifyMetadata(Flow):
    """Inserts event metadata into the event body.

    :param mapping: dictionary from event attribute name to entry key in the event body (which must
        be a dictionary). Alternatively, an iterable of names may be provided, and these will be
        used as both attribute name and entry key. The attributes are those of `Event`: key, time,
        id, headers, method, path, content_type, error (and body).
    :param name: name of this step, as it should appear in logs. Defaults to class name
        (ReifyMetadata).
    :type name: string
    """

    def __init__(self, mapping: Iterable[str] | Mapping[str, str], **kwargs):
        super().__init__(**kwargs)
        self.mapping = mapping  # as given (what to_dict shows)
        if isinstance(mapping, Mapping):
            pairs = list(mapping.items())
        elif isinstance(mapping, str | bytes) or not hasattr(mapping, "__iter__"):
            raise TypeError(
                f"{self.name}: mapping must be a dict or a list of event attribute names, "
                f"got {type(mapping).__name__}: {mapping!r}"
            )
        else:
            pairs = [(name, name) for name in mapping]
        for attribute, _ in pairs:
            if attribute not in EVENT_ATTRIBUTES:
                raise ValueError(
                    f"{self.name}: {attribute!r} in mapping is not an event attribute; "
                    f"expected one of {', '.join(EVENT_ATTRIBUTES)}"
                )
        self._pairs = pairs

    async def _do(self, batch):
        if not self._pairs:
            await self._emit(batch)
            return
        columns = batch.columns
        if columns is not None and all(attribute != "body" for attribute, _ in self._pairs):
            extra = {
                entry: _object_array(_attribute_values(batch, attribute)) for attribute, entry in self._pairs
            }
            await self._emit(batch.with_columns(columns.with_columns(extra)))
            return
        values = [(entry, _attribute_values(batch, attribute)) for attribute, entry in self._pairs]
        bodies = batch.bodies_to_change()
        done = 0
        try:
            for i, body in enumerate(bodies):
                for entry, column in values:
                    body[entry] = column[i]
                done += 1
        except Exception as ex:
            if done:
                await self._emit(batch.slice(0, done))
            ex.add_note(f"raised in step {self.name}: event bodies must be dicts")
            raise
        await self._emit(batch)


class Rename(Flow):
    """Renames fields of dict bodies.

    Each (old, new) pair of `mapping` is applied in order: when the body has the field `old`, its
    value moves to `new` (replacing a field of that name) and `old` is removed. Bodies that are not
    dicts are passed on unchanged when they do not contain `old`.

    :param mapping: dictionary from current field name to new field name.
    :param name: name of this step, as it should appear in logs. Defaults to class name (Rename).
    """

    def __init__(self, mapping: Mapping[str, str], **kwargs):
        super().__init__(**kwargs)
        self.mapping = mapping  # as given (what to_dict shows)
        if not isinstance(mapping, Mapping):
            raise TypeError(
                f"{self.name}: mapping must be a dict from field name to new field name, "
                f"got {type(mapping).__name__}: {mapping!r}"
            )
        self._mapping = list(mapping.items())

    async def _do(self, batch):
        columns = batch.columns
        if columns is not None and not any(columns.absent.get(old) is not None for old, _ in self._mapping):
            await self._emit(batch.with_columns(self._rename_columns(columns)))
            return
        bodies = batch.bodies_to_change()
        mapping = self._mapping
        done = 0
        try:
            for body in bodies:
                for old, new in mapping:
                    if old in body:
                        body[new] = body[old]
                        del body[old]
                done += 1
        except Exception as ex:
            if done:
                await self._emit(batch.slice(0, done))
            ex.add_note(f"raised in step {self.name}")
            raise
        await self._emit(batch)

    def _rename_columns(self, columns):
        data = dict(columns.data)
        absent = dict(columns.absent)
        converters = dict(columns.converters)
        for old, new in self._mapping:
            if old not in data:
                continue
            data[new] = data[old]
            del data[old]
            for per_name in (absent, converters):
                per_name.pop(new, None)
                if old in per_name:
                    per_name[new] = per_name.pop(old)
        return type(columns)(data, columns.n, absent, converters)
