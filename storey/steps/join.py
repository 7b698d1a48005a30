"""JoinWithTable: joins events with the attributes a Table holds for their key."""

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.batch import EventBatch
from ..core.paths import get_in, split_container_path
from ..dtypes.event import Event, V3ioError
from ..engine.graph import Flow
from ..table.key_cache import Table, resolve_table
from .functions import check_callable, write_result
from .http import _check_count, _ConcurrentJobExecution

__all__ = ["JoinWithTable", "JoinWithV3IOTable"]


def _check_attributes(step_name, attributes):
    if attributes is None:
        return None
    if isinstance(attributes, str):
        names = [name.strip() for name in attributes.split(",") if name.strip()]
    elif isinstance(attributes, list | tuple) and all(isinstance(a, str) for a in attributes):
        names = list(attributes)
    else:
        raise TypeError(f"{step_name}: attributes must be a list of attribute names, got {attributes!r}")
    # '*' (the storage's "every attribute") and an empty list ask for all attributes
    if not names or "*" in names:
        return None
    return names


class JoinWithTable(Flow):
    """Joins each event with data from the given table.

    The key of each event (see `key_extractor`) selects the attributes the table holds for it;
    the table loads the keys it does not hold yet from its storage, once per batch of events.

    :param table: A Table object or name to join with. If a table name is provided, it will be
        looked up in the context.
    :param key_extractor: Key's column name or a function for extracting the key, for table access
        from an event. The function receives the body, or the Event with full_event=True.
    :param attributes: A list (or comma-separated string) of attributes to be queried for; only
        these are joined. Defaults to all attributes.
    :param inner_join: Whether to drop events when the table does not have a matching entry
        (join_function won't be called in such a case). Defaults to False.
    :param join_function: Joins the original event with relevant data received from the storage:
        `join_function(body, attributes)` (the Event with full_event=True) returns the new body
        (Event). Event is dropped when this function returns None. Defaults to assume the event's
        body is a dict-like object and updating it.
    :param name: Name of this step, as it should appear in logs. Defaults to class name
        (JoinWithTable).
    :param full_event: Whether user functions should receive and/or return Event objects (when
        True), or only the payload (when False). Defaults to False.
    :param context: Context object that holds global configurations and secrets.
    """

    def __init__(
        self,
        table: Table | str,
        key_extractor: str | Callable[[Event], str],
        attributes: list[str] | None = None,
        inner_join: bool = False,
        join_function: Callable[[Any, dict[str, object]], Any] | None = None,
        **kwargs,
    ):
        # storey's concurrency settings: checked, but joins read the table's state in order
        concurrency = {
            name: kwargs.pop(name, None) for name in ("max_in_flight", "retries", "backoff_factor")
        }
        super().__init__(**kwargs)
        _check_count(self.name, "max_in_flight", concurrency["max_in_flight"], None, 1)
        _check_count(self.name, "retries", concurrency["retries"], None, 0)
        if isinstance(table, str):
            self._describe(table=table)
        if isinstance(key_extractor, str):
            self._describe(key_extractor=key_extractor)
        if attributes:
            self._describe(attributes=attributes)
        self._describe(inner_join=inner_join)
        self._table = resolve_table(self.name, table, self.context)
        if isinstance(key_extractor, str):
            self._key_field, self._key_fn = key_extractor, None
        elif callable(key_extractor):
            self._key_field, self._key_fn = None, key_extractor
        else:
            raise TypeError(
                f"{self.name}: key_extractor must be a field name or a callable, got "
                f"{type(key_extractor).__name__}: {key_extractor!r}"
            )
        self._attributes = _check_attributes(self.name, attributes)
        self._inner_join = bool(inner_join)
        if join_function is not None:
            check_callable(self.name, "join_function", join_function)
        self._join_function = join_function

    def _state_objects(self):
        return (self._table,)

    def _init(self):
        self._table._bind(self._runtime)

    async def _on_terminate(self):
        await self._table._end_flow(flush=False)

    def _close(self):
        self._table._unbind(self._runtime)

    def _attributes_of(self, key):
        """The attributes to join for `key`; None when it has none."""
        attributes = self._table._get_static(key)
        if not attributes:
            return None
        wanted = self._attributes
        if wanted is not None and isinstance(attributes, dict):
            attributes = {name: attributes[name] for name in wanted if name in attributes}
            if not attributes:
                return None
        return attributes

    def _inputs(self, batch):
        """What the key extractor and the join receive: events, bodies, or values at input_path
        (None where a body cannot hold input_path: the join raises there)."""
        if self._full_event:
            return batch.events()
        bodies = batch.bodies_to_change()
        if not self._input_path:
            return bodies
        return [get_in(b, self._input_path) if hasattr(b, "__getitem__") else None for b in bodies]

    async def _before_one_at_a_time(self, batch):
        if batch.n > 1 and self._table._persists:
            keys, _ = self._extract_keys(self._inputs(batch))
            await self._table._ensure_loaded(keys)

    async def _do(self, batch):
        columns = batch.columns
        if (
            columns is not None
            and not self._full_event
            and not self._input_path
            and not self._result_path
            and self._join_function is None
            and self._key_field is not None
        ):
            out = await self._join_columns(batch, columns)
            if out is not None:
                if out.n:
                    await self._emit(out)
                return
        await self._join_rows(batch)

    def _extract_keys(self, inputs):
        """The key of each input, stopping at the first that fails (its error is returned)."""
        keys = []
        try:
            if self._key_fn is not None:
                fn = self._key_fn
                for x in inputs:
                    keys.append(fn(x))
            else:
                field = self._key_field
                bodies = [e.body for e in inputs] if self._full_event else inputs
                for body in bodies:
                    keys.append(body[field])
        except Exception as ex:
            return keys, ex
        return keys, None

    async def _join_rows(self, batch):
        full_event = self._full_event
        bodies = None if full_event else batch.bodies_to_change()
        if self._input_path and not full_event:
            for i, body in enumerate(bodies):
                if not hasattr(body, "__getitem__"):
                    # the events before it are joined first
                    bodies = bodies[:i]
                    break
        inputs = self._inputs(batch)[: len(bodies)] if bodies is not None else batch.events()
        keys, error = self._extract_keys(inputs)
        if error is None and bodies is not None and len(bodies) < batch.n:
            error = TypeError("input_path parameter supports only dict-like event bodies")
        await self._table._ensure_loaded(keys)
        join_function = self._join_function
        inner_join = self._inner_join
        kept = []
        results = []
        try:
            for i, key in enumerate(keys):
                attributes = self._attributes_of(key)
                if attributes is None:
                    if inner_join:
                        continue
                    attributes = {}
                x = inputs[i]
                if join_function is None:
                    (x.body if full_event else x).update(attributes)
                    result = x
                else:
                    result = join_function(x, attributes)
                    if result is None:
                        continue
                if self._result_path and not full_event:
                    result = write_result(bodies[i], self._result_path, result)
                kept.append(i)
                results.append(result)
        except Exception as ex:
            error = ex
        if results:
            if full_event:
                out = EventBatch.from_events(results)
            else:
                # kept is increasing: as long as the batch, it is every event
                out = batch.with_bodies(results, None if len(kept) == batch.n else kept)
            await self._emit(out)
        if error is not None:
            error.add_note(f"raised in step {self.name}")
            raise error

    async def _join_columns(self, batch, columns):
        """The default join of column bodies, kept as columns: the joined attributes become new
        columns. None when the batch needs the row path (a missing key field, or attributes that
        would replace existing fields)."""
        field = self._key_field
        if field not in columns or columns.absent_rows(field) is not None:
            return None
        keys = columns.column_list(field)
        await self._table._ensure_loaded(keys)
        found = [self._attributes_of(key) for key in keys]
        names = {}
        for attributes in found:
            if attributes is None:
                continue
            if not isinstance(attributes, dict):
                return None
            for name in attributes:
                names[name] = None
        if any(name in columns for name in names):
            return None
        n = batch.n
        extra = {}
        extra_absent = {}
        for name in names:
            values = np.empty(n, dtype=object)
            missing = np.zeros(n, dtype=bool)
            for i, attributes in enumerate(found):
                if attributes is not None and name in attributes:
                    values[i] = attributes[name]
                else:
                    missing[i] = True
            extra[name] = values
            if missing.any():
                extra_absent[name] = missing
        out = batch.with_columns(columns.with_columns(extra, extra_absent)) if extra else batch
        if self._inner_join:
            kept = [i for i, attributes in enumerate(found) if attributes is not None]
            out = out.take(kept)
        return out


class JoinWithV3IOTable(_ConcurrentJobExecution):
    """Joins each event with an item of a V3IO table (several requests in flight at a time). Used
    for event augmentation.

    :param storage: the driver that reads the items (a `V3ioDriver`, or any object with
        `async _get_item(container, table_path, key, attributes)` returning a v3io response).
    :param key_extractor: function of the event's body (or event with full_event) that gives the
        item's key.
    :param join_function: function (body, item attributes) => the body to pass on; None drops the
        event. Events whose key has no item are dropped.
    :param table_path: path to the table in V3IO, '/container/path'.
    :param attributes: a comma-separated list of attributes to be requested from V3IO. Defaults to
        '*' (all user attributes).
    :param name: name of this step, as it should appear in logs. Defaults to class name
        (JoinWithV3IOTable).
    :param full_event: whether user functions receive and return Event objects (True) or only the
        payload (False, the default).
    """

    def __init__(self, storage, key_extractor, join_function, table_path, attributes="*", **kwargs):
        super().__init__(**kwargs)
        self._describe(table_path=table_path, attributes=attributes)
        check_callable(self.name, "key_extractor", key_extractor)
        check_callable(self.name, "join_function", join_function)
        if not isinstance(table_path, str):
            raise TypeError(f"{self.name}: table_path must be a string, got {type(table_path).__name__}")
        self._storage = storage
        self._key_extractor = key_extractor
        self._join_function = join_function
        self._container, self._table_path = split_container_path(table_path)
        self._attributes = attributes

    async def _process_event(self, event):
        key = str(self._key_extractor(self._get_event_or_body(event)))
        return await self._storage._get_item(self._container, self._table_path, key, self._attributes)

    async def _handle_completed(self, event, response):
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise V3ioError(
                f"Failed to get item. Response status code was {response.status_code}: {response.body}"
            )
        joined = self._join_function(self._get_event_or_body(event), response.output.item)
        if joined is None:
            return None
        return self._user_fn_output_to_event(event, joined)

    async def _cleanup(self):
        await self._storage.close()
