"""Window aggregation steps: AggregateByKey, QueryByKey.

Both keep their per-key state in the Table (`table._aggregation_state`, see
`storey.aggregation_state`) and compute features with the kernels of `storey.kernels`, one kernel
call per group of aggregators per batch, in the events' arrival order.
"""

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from ..core.batch import EventBatch
from ..core.times import TimeOutOfRange
from ..dtypes.aggregators import FieldAggregator, aggregator_from
from ..dtypes.emit_policy import (
    EmitAfterDelay,
    EmitAfterMaxEvent,
    EmitAfterWindow,
    EmitEveryEvent,
    emit_policy_from,
)
from ..dtypes.windows import FixedWindows, FixedWindowType
from ..engine.graph import Flow, walk_graph
from ..kernels import kernels, load_in_background, loading
from ..kernels.layout import MODE_AGG, MODE_LAST_CLOSED, MODE_QUERY, R_NA, R_OUT, R_WIN
from ..kernels.registry import AGGREGATIONS
from ..table.aggregation_state import (
    REFERENCE_FORM,
    aggregation_state,
    aggregator_for_features,
    aggregator_from_description,
)
from ..table.key_cache import resolve_table
from ..table.keys import table_key
from .features import Features
from .keys_and_values import KeySource, fill_values
from .one_event import OneEventArrays

__all__ = ["AggregateByKey", "QueryByKey"]

_EVERY_EVENT = EmitEveryEvent()
# batches at least this big are aggregated by two threads, each taking half of the keys (the
# kernels release the GIL)
_PARALLEL_MIN = 8192
# while the compiled kernels load (load_in_background), batches of at most this many events are
# computed by the interpreted kernels (about 100 µs an event), a live service's first events among
# them, each batch after leaving the loading thread the GIL for at most _LOADER_TURN seconds
_INTERPRETED_MAX = 64
_LOADER_TURN = 0.001
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
_helper = None
_INT64 = np.dtype(np.int64)


def _run_update_in_two(update, args):
    """Runs a kernel update over a batch on two cores, each taking half of the keys."""
    global _helper
    if _helper is None:
        _helper = ThreadPoolExecutor(1, thread_name_prefix="storey-aggregation")
    other = _helper.submit(update, *args, 1, 2)
    update(*args, 0, 2)
    other.result()


def _kernel_times(step, batch):
    """The events' times as the kernels take them: a writable, aligned, contiguous int64 array.

    Numba compiles a kernel once per distinct argument type, and an array's type includes its
    layout, alignment and whether it is read-only: the times are the one kernel argument that
    comes from outside (an Arrow column is read-only, a pandas column may be a strided view), so
    they are copied into the one type the kernels are compiled for. A time the kernels cannot
    hold is a TimeOutOfRange (ValueError) naming the step."""
    try:
        times = batch.times
    except TimeOutOfRange as ex:
        raise TimeOutOfRange(f"{step}: {ex}", ex.index) from None
    # carray: C-contiguous, aligned and writeable
    if times.dtype != _INT64 or not times.flags.carray:
        times = np.require(times, np.int64, ["C", "A", "W", "O"])
    return times


def _writes_in_background(step):
    """Whether a step after `step` writes in a thread of its own (ParquetTarget): on two cores,
    that thread takes the second one, and a kernel split in two would only contend with it
    (measured: Parquet backfill 1M rows 5-10% slower split)."""
    return any(s._writes_in_a_thread for s in walk_graph(step)[1:])


def _check_storage(step_name, table):
    unsupported = table._storage._unsupported_aggregation_hooks()
    if unsupported:
        raise ValueError(
            f"{step_name}: {type(table._storage).__name__} stores aggregation state through storey 1.0.6's "
            f"driver hooks {unsupported}, which this storey does not call (their format is storey 1.0.6's "
            "own objects); implement _load_keys, _save_keys and _load_aggregation_schema (see "
            "storey.drivers) to keep window state in it"
        )


def _check_aliases(step_name, aliases):
    if aliases is None:
        return {}
    if not isinstance(aliases, dict):
        raise TypeError(
            f"{step_name}: aliases must be a dict {{name: new_name}}, got {type(aliases).__name__}"
        )
    return dict(aliases)


def _check_optional_callable(step_name, param, fn):
    if fn is not None and not callable(fn):
        raise TypeError(f"{step_name}: {param} must be callable, got {type(fn).__name__}: {fn!r}")


def _rows(rows, total):
    """The output rows a step takes, of `total`; None when it takes them all, in order."""
    return None if rows == list(range(total)) else rows


class _Counted(NamedTuple):
    """What `AggregateByKey._counted` finds in a batch."""

    emitted: np.ndarray
    counts: dict | None
    pending: dict | None


# every event emitted as it comes
_ALL_EMITTED = _Counted(np.zeros(0, dtype=np.uint8), None, None)


class _GroupCall:
    """One kernel call of a step per batch: a group of aggregators and the cfg to call it with."""

    __slots__ = ("group", "cfg")

    def __init__(self, group, cfg):
        self.group = group
        self.cfg = cfg


def _feature_blocks(segments, calls):
    """The features of a step's aggregators, in the step's order, as blocks of the kernel calls'
    outputs: (call index, names, rows of that call's output or None for all of them)."""
    blocks = []
    for index, names, rows in segments:
        if blocks and blocks[-1][0] == index:
            blocks[-1][1].extend(names)
            blocks[-1][2].extend(rows)
        else:
            blocks.append((index, list(names), list(rows)))
    return [(index, names, _rows(rows, calls[index].group.n_features)) for index, names, rows in blocks]


class AggregateByKey(Flow):
    """Aggregates the data into the table object provided for later persistence, and outputs an
    event enriched with the requested aggregation features. Persistence is done via the NoSqlTarget
    step and based on the Cache object persistence settings.

    Events are aggregated in arrival order; an event's features are those of the windows that end
    at its own time (its period bucket, or its fixed window). An event without a value for an
    aggregator (field missing or None, or rejected by its aggr_filter) gets that aggregator's
    features as the key's windows stand at the latest aggregated time. An event too old for every
    bucket the key keeps changes nothing and gets none of that aggregator's features.

    As in storey, a step aggregates into every aggregator its table holds: two AggregateByKey
    steps on one table each aggregate every event into the aggregators of both, and add the
    features of both.

    :param aggregates: List of aggregates to apply for each event. accepts either list of
        FieldAggregators or a dictionary describing FieldAggregators.
    :param table: A Table object or name for persistence of aggregations. If a table name is
        provided, it will be looked up in the context object passed in kwargs.
    :param key: Key field to aggregate by, accepts either a string representing the key field or a
        key extracting function (of the body). Defaults to the key in the event's metadata.
        (Optional)
    :param emit_policy: Policy indicating when the data will be emitted. Defaults to EmitEveryEvent
    :param augmentation_fn: Function that augments the features into the event's body:
        `fn(body, features) -> body`. Defaults to updating a dict. (Optional)
    :param enrich_with: List of attributes names from the associated storage object to be fetched
        and added to every event. (Optional)
    :param aliases: Dictionary specifying aliases for enriched or aggregate columns, of the format
        {'col_name': 'new_col_name'}. (Optional)
    :param use_windows_from_schema: Use the windows the table already holds for aggregators of the
        same name, instead of those given. Defaults to False.
    """

    def __init__(
        self,
        aggregates,
        table,
        key=None,
        emit_policy=_EVERY_EVENT,
        augmentation_fn=None,
        enrich_with=None,
        aliases=None,
        use_windows_from_schema=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = self.name
        if not isinstance(aggregates, list | tuple):
            raise TypeError(
                f"{name}: aggregates must be a list of FieldAggregators or dicts, "
                f"got {type(aggregates).__name__}"
            )
        aggregators = [aggregator_from(name, a) for a in aggregates]
        seen = set()
        for aggregator in aggregators:
            if aggregator.name in seen:
                raise TypeError(f"{name}: aggregates must have unique names, {aggregator.name!r} repeats")
            seen.add(aggregator.name)
        self._emit_policy = emit_policy_from(name, emit_policy)
        self._emits_every_event = isinstance(self._emit_policy, EmitEveryEvent)
        self._table = resolve_table(name, table, self.context)
        self._keys = KeySource(name, key)
        _check_optional_callable(name, "augmentation_fn", augmentation_fn)
        self._augmentation_fn = augmentation_fn
        if enrich_with is not None and (
            not isinstance(enrich_with, list | tuple) or not all(isinstance(e, str) for e in enrich_with)
        ):
            raise TypeError(f"{name}: enrich_with must be a list of attribute names, got {enrich_with!r}")
        self._enrich_with = list(enrich_with or [])
        self._aliases = _check_aliases(name, aliases)
        _check_storage(name, self._table)
        state = aggregation_state(self._table)
        if use_windows_from_schema:
            aggregators = [_with_held_windows(state, a) for a in aggregators]
        try:
            state.register(aggregators)
        except ValueError as ex:
            raise ValueError(f"{name}: {ex}") from None
        self._own = aggregators
        self._planned = None
        self._blocks = []
        self._calls = []
        self._plan_for_table()
        self._kernels = None
        self._kinds = set()
        self._counts = {}
        self._pending = {}
        self._touched = {}
        self._timer = None

    def _plan_for_table(self):
        """Plans the step's kernel calls for every aggregator its table holds (as in the reference,
        a step aggregates each event into all of them, other steps' too, and adds all their
        features), again when steps built since registered more."""
        state = aggregation_state(self._table)
        if self._planned != state.version:
            self._aggregators = list(state.aggregated)
            self._calls = self._plan(state)
            one = OneEventArrays(len(self._aggregators), [call.group.n_features for call in self._calls])
            one.features = self._features(1, one.outputs)
            self._one_event = one
            self._planned = state.version

    def _plan(self, state):
        """The kernel calls for the step's aggregators (one per group of the table holding them)
        and where each aggregator's features are in their outputs, in the step's order (as the
        reference adds them, whatever the kinds of window)."""
        mine = {a.name: row for row, a in enumerate(self._aggregators)}
        invalid_row = len(self._aggregators)
        groups = []
        segments = []
        for aggregator in self._aggregators:
            group, index = state.by_name[aggregator.name]
            if all(g is not group for g in groups):
                groups.append(group)
            layout = group.layouts[index]
            names = [self._aliases.get(name, name) for name in layout.names]
            rows = range(layout.out_row, layout.out_row + len(names))
            segments.append((groups.index(group), names, rows))
        calls = []
        for group in groups:
            rows = [mine.get(layout.aggregator.name, invalid_row) for layout in group.layouts]
            calls.append(_GroupCall(group, group.with_value_rows(rows)))
        self._blocks = _feature_blocks(segments, calls)
        self._groups = [call.group for call in calls]
        return calls

    def _state_objects(self):
        return (self._table,)

    def _loaded_kernels(self, n):
        """The kernels for a batch of n events: the compiled ones, or the interpreted ones while
        the compiled ones are still loading and the batch is small."""
        if self._kernels is None:
            if n <= _INTERPRETED_MAX and any(loading(kind, _LOADER_TURN) for kind in self._kinds):
                return kernels(compiled=False)
            self._kernels = kernels()
        return self._kernels

    def _init(self):
        self._counts = {}
        self._pending = {}
        self._touched = {}
        self._timer = None
        self._table._bind(self._runtime)
        self._plan_for_table()
        # loaded in a thread of its own while the flow starts; the first batch takes it
        groups = aggregation_state(self._table).groups
        self._kinds = {"fixed" if group.fixed else "sliding" for group in groups}
        load_in_background(sliding="sliding" in self._kinds, fixed="fixed" in self._kinds)
        self._kernels = None
        self._parallel = _CORES > 2 or (_CORES == 2 and not _writes_in_background(self))

    async def _on_terminate(self):
        self._cancel_timer()
        await self._table._end_flow(flush=True)

    def _close(self):
        self._cancel_timer()
        self._table._unbind(self._runtime)

    def _cancel_timer(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ---- processing
    async def _do(self, batch):
        n = batch.n
        if n == 0:
            return
        try:
            keys = self._keys.keys(batch)
        except Exception as ex:
            ex.add_note(f"raised in step {self.name}")
            raise
        table = self._table
        groups = self._groups
        try:
            slots = await table._aggregation_slots(keys, groups)
            if self._enrich_with:
                await table._ensure_loaded(keys)
        except Exception as ex:
            ex.add_note(f"raised in step {self.name}")
            raise
        counted = self._counted(keys)
        # the last step of its flow (a service keeping a table's features): the events it would
        # emit, features added, would go nowhere
        leaf = self._emits_every_event and not self._outlets and self._augmentation_fn is None
        try:
            features = self._aggregate(batch, slots, counted.emitted)
            try:
                # read before anything else runs: the features of one event are in arrays the
                # next event's overwrite (another task may run this step while the table
                # flushes). So an augmentation_fn has run when a write-through flush fails.
                out = None if leaf else self._output(batch, keys, features)
            finally:
                await table._aggregated(slots, groups)
            if leaf:
                return
        except Exception as ex:
            ex.add_note(f"raised in step {self.name}")
            raise
        if self._emits_every_event:
            await self._emit(out)
        else:
            await self._emit_by_policy(out, keys, counted)

    def _aggregate(self, batch, slots, emitted):
        n = batch.n
        one = self._one_event if n == 1 and batch.columns is None else None
        if one is not None:
            one.fill(self.name, self._aggregators, batch)
            times, values, valid, outputs = one.times, one.values, one.valid, one.outputs
        else:
            times = _kernel_times(self.name, batch)
            # the last row: no value, for the table's aggregators that other steps aggregate
            values = np.empty((len(self._aggregators) + 1, n), dtype=np.float64)
            valid = np.zeros((len(self._aggregators) + 1, n), dtype=np.uint8)
            fill_values(self.name, self._aggregators, batch, values, valid)
            outputs = [
                (
                    np.empty((call.group.n_features, n), dtype=np.float64),
                    np.zeros((call.group.n_features, n), dtype=np.uint8),
                )
                for call in self._calls
            ]
        # a step without aggregators calls no kernel, and loads none
        found = self._loaded_kernels(n) if self._calls else None
        for call, (out, flags) in zip(self._calls, outputs):
            group = call.group
            update = found.fixed_update if group.fixed else found.sliding_update
            args = (
                call.cfg,
                group.max_values,
                times,
                slots,
                values,
                valid,
                emitted,
                group.state,
                group.istate,
                out,
                flags,
            )
            if n >= _PARALLEL_MIN and self._parallel:
                _run_update_in_two(update, args)
            else:
                update(*args, 0, 1)
        return one.features if one is not None else self._features(n, outputs)

    def _features(self, n, outputs):
        """The step's features from the kernel calls' (out, flags), in the step's order."""
        features = Features(n)
        for index, names, rows in self._blocks:
            out, flags = outputs[index]
            features.add_block(names, out, flags, rows)
        return features

    def _enriched(self, feature_dicts, keys):
        aliases = self._aliases
        get = self._table._get_static
        for features, key in zip(feature_dicts, keys):
            attributes = get(key)
            if isinstance(attributes, dict):
                for name in self._enrich_with:
                    if name in attributes:
                        features[aliases.get(name, name)] = attributes[name]

    def _output(self, batch, keys, features):
        columns = batch.columns
        if (
            columns is not None
            and not columns.list_rows
            and self._augmentation_fn is None
            and not self._enrich_with
        ):
            out = batch.with_columns(features.add_to_columns(columns))
        else:
            bodies = batch.bodies_to_read()
            for body in bodies:
                if not isinstance(body, dict):
                    raise TypeError(
                        f"{self.name}: event bodies must be dicts to add features to, "
                        f"got {type(body).__name__}"
                    )
            if self._enrich_with or self._augmentation_fn is not None:
                feature_dicts = features.dicts()
                if self._enrich_with:
                    self._enriched(feature_dicts, keys)
                if self._augmentation_fn is not None:
                    fn = self._augmentation_fn
                    new_bodies = [fn(body, f) for body, f in zip(bodies, feature_dicts)]
                else:
                    new_bodies = feature_dicts
                    for row, body in zip(new_bodies, bodies):
                        row.update(body)
            else:
                new_bodies = features.merged_into(bodies)
            out = batch.with_bodies(new_bodies)
        if self._keys.replaces_keys:
            out = out.with_keys(keys)
        return out

    # ---- emission
    async def _emit_by_policy(self, out, keys, counted):
        """Emits, or keeps for later, the events of a policy other than EmitEveryEvent."""
        policy = self._emit_policy
        if isinstance(policy, EmitAfterMaxEvent):
            await self._emit_every_nth(out, counted, policy)
        else:
            for key in keys:
                self._touched.setdefault(table_key(key), key)
            self._start_wall_clock_timer(policy)

    def _counted(self, keys):
        """Which events the emit policy emits as they come (`emitted`, uint8 per event, or empty
        for all: the kernels read the windows for an emitted event without a value as the
        reference does) and, with EmitAfterMaxEvent, each key's count of events not emitted yet
        after the batch (`counts`) and its last such event in the batch (`pending`, None after an
        emitted one)."""
        policy = self._emit_policy
        if not isinstance(policy, EmitAfterMaxEvent):
            return _ALL_EMITTED
        emitted = np.zeros(len(keys), dtype=np.uint8)
        counts = {}
        pending = {}
        limit = policy.max_events
        for i, key in enumerate(keys):
            k = table_key(key)
            count = counts.get(k, self._counts.get(k, 0)) + 1
            if count >= limit:
                emitted[i] = 1
                count = 0
                pending[k] = None
            else:
                pending[k] = i
            counts[k] = count
        return _Counted(emitted, counts, pending)

    async def _emit_every_nth(self, out, counted, policy):
        self._counts.update(counted.counts)
        if policy.timeout_secs is not None:
            for k, i in counted.pending.items():
                self._pending.pop(k, None)
                if i is not None:
                    self._pending[k] = out.take([i])
            self._start_timeout(policy.timeout_secs)
        emitted = np.flatnonzero(counted.emitted).tolist()
        if emitted:
            await self._emit(out.take(emitted) if len(emitted) < out.n else out)

    def _start_timeout(self, seconds):
        runtime = self._runtime
        if self._timer is None and runtime is not None and getattr(runtime, "loop", None) is not None:

            async def on_timeout():
                self._timer = None
                pending, self._pending = self._pending, {}
                for k in pending:
                    self._counts[k] = 0
                if pending:
                    await self._emit(EventBatch.concat(list(pending.values())))
                self._start_timeout(seconds)

            self._timer = runtime.schedule(seconds, on_timeout)

    def _start_wall_clock_timer(self, policy):
        runtime = self._runtime
        if self._timer is not None or runtime is None or getattr(runtime, "loop", None) is None:
            return
        now = dt.datetime.now(dt.UTC).timestamp()
        delay = float(policy.delay_in_seconds or 0)
        if isinstance(policy, EmitAfterDelay):
            at = now + delay
        else:
            every = self._emission_period(policy) / 1e9
            at = (now // every + 1) * every + delay
        boundary = at - delay

        async def on_timer():
            self._timer = None
            await self._emit_touched(boundary)
            self._start_wall_clock_timer(policy)

        self._timer = runtime.schedule(max(at - now, 0.0), on_timer)

    def _emission_period(self, policy):
        lengths = []
        for aggregator in self._own:
            windows = aggregator.windows
            if isinstance(policy, EmitAfterWindow):
                lengths.append(windows.smallest_window_ns)
            elif isinstance(windows, FixedWindows):
                lengths.append(windows.smallest_window_ns)
            else:
                lengths.append(windows.period_ns)
        return min(lengths)

    async def _emit_touched(self, boundary):
        """Emits, for each key that received events since the last emission, an event with its
        features at `boundary` (epoch seconds): body {'key': key, 'time': boundary} + features."""
        touched, self._touched = self._touched, {}
        if not touched:
            return
        keys = list(touched.values())
        when = dt.datetime.fromtimestamp(boundary, dt.UTC)
        n = len(keys)
        batch = EventBatch(
            n,
            bodies=[{"key": key, "time": when} for key in keys],
            keys=keys,
            time_values=[when] * n,
            ids=[None] * n,
        )
        await self._table._aggregation_slots(keys, self._groups)
        features = self._read(batch, keys, MODE_AGG)
        rows = features.merged_into(batch.bodies_to_change())
        await self._emit(batch.with_bodies(rows))

    def _read(self, batch, keys, mode):
        """The features the keys have at the events' times, changing nothing."""
        n = batch.n
        state = self._table._aggregation_state
        slots = state.existing_slots(keys)
        times = _kernel_times(self.name, batch)
        outputs = []
        for call in self._calls:
            group = call.group
            out = np.empty((group.n_features, n), dtype=np.float64)
            flags = np.zeros((group.n_features, n), dtype=np.uint8)
            outputs.append((out, flags))
            found = self._loaded_kernels(n)
            read = found.fixed_read if group.fixed else found.sliding_read
            read(call.cfg, group.max_values, times, slots, mode, group.state, group.istate, out, flags)
        return self._features(n, outputs)


def _with_held_windows(state, aggregator):
    held = state.by_name.get(aggregator.name)
    if held is None:
        return aggregator
    group, index = held
    windows = group.layouts[index].aggregator.windows
    if windows == aggregator.windows:
        return aggregator
    return FieldAggregator(
        aggregator.name,
        aggregator.field,
        aggregator.aggregations,
        windows,
        aggregator.aggr_filter,
        aggregator.max_value,
    )


class QueryByKey(AggregateByKey):
    """Query features by name

    Reads, for each event, the features its key has in the table at the event's time (windows
    that end at the event's time; fixed windows per `fixed_window_type`), without aggregating
    anything. Features of an aggregator that computes the base statistics they need are available
    too (e.g. `x_avg_1h` when `x` has sum and count). Names that are not features of the table
    are looked up in the key's static attributes. A key the table holds nothing for gets no
    features; an event whose key is missing (None) gets a None body.

    :param features: List of features to get.
    :param table: A Table object or name for persistence of aggregations. If a table name is
        provided, it will be looked up in the context object passed in kwargs.
    :param key: Key field to aggregate by, accepts either a string representing the key field or a
        key extracting function. Defaults to the key in the event's metadata. (Optional). Can be
        list of keys
    :param augmentation_fn: Function that augments the features into the event's body. Defaults to
        updating a dict. (Optional)
    :param aliases: Dictionary specifying aliases for enriched or aggregate columns, of the format
        {'col_name': 'new_col_name'}. (Optional)
    :param fixed_window_type: Which fixed window to read: the one holding the event's time
        (CurrentOpenWindow, the default) or the one before it (LastClosedWindow).
    """

    def __init__(
        self,
        features,
        table,
        key=None,
        augmentation_fn=None,
        aliases=None,
        fixed_window_type=FixedWindowType.CurrentOpenWindow,
        **kwargs,
    ):
        Flow.__init__(self, **kwargs)
        name = self.name
        if isinstance(features, str) or not isinstance(features, list | tuple):
            raise TypeError(f"{name}: features must be a list of feature names, got {features!r}")
        if not all(isinstance(f, str) for f in features):
            raise TypeError(f"{name}: features must be feature names (strings), got {features!r}")
        if fixed_window_type is None:
            fixed_window_type = FixedWindowType.CurrentOpenWindow
        if not isinstance(fixed_window_type, FixedWindowType):
            raise TypeError(
                f"{name}: fixed_window_type must be a FixedWindowType, got {type(fixed_window_type).__name__}"
            )
        self._features = list(dict.fromkeys(features))
        self._table = resolve_table(name, table, self.context)
        self._keys = KeySource(name, key)
        _check_optional_callable(name, "augmentation_fn", augmentation_fn)
        self._augmentation_fn = augmentation_fn
        self._aliases = _check_aliases(name, aliases)
        self._fixed_window_type = fixed_window_type
        _check_storage(name, self._table)
        self._emit_policy = _EVERY_EVENT
        self._enrich_with = []
        self._aggregators = []
        self._calls = []
        self._attributes = []
        self._version = None
        self._kernels = None
        self._kinds = set()
        self._counts = {}
        self._pending = {}
        self._touched = {}
        self._timer = None

    def _resolve(self):
        """Maps the requested names to features of the table's aggregators (the rest are static
        attributes), refreshed when aggregators are registered on the table."""
        state = aggregation_state(self._table)
        if self._version == state.version:
            return
        self._version = state.version
        available = {}
        for group in state.groups:
            for index, layout in enumerate(group.layouts):
                for aggr in AGGREGATIONS.values():
                    if aggr.stats & layout.stats != aggr.stats:
                        continue
                    for w, (_, window) in enumerate(layout.windows):
                        available.setdefault(
                            f"{layout.aggregator.name}_{aggr.name}_{window}", (group, index, aggr, w)
                        )
        wanted = {}
        attributes = []
        for feature in self._features:
            found = available.get(feature)
            if found is None:
                attributes.append(feature)
            else:
                group, index, aggr, w = found
                wanted.setdefault(id(group), (group, {}))[1].setdefault(index, []).append((aggr, w, feature))
        self._attributes = attributes
        self._calls = [self._view(group, by_layout) for group, by_layout in wanted.values()]

    def _view(self, group, by_layout):
        """A cfg over the group's state computing only the requested features."""
        header = [len(by_layout)] + [0] * len(by_layout)
        body = []
        features = []
        out_row = 0
        for a, (index, requested) in enumerate(by_layout.items()):
            layout = group.layouts[index]
            record = list(layout.record)
            nw = len(layout.windows)
            codes = list(dict.fromkeys(aggr.code for aggr, _, _ in requested))
            record = record[: R_WIN + nw] + codes
            record[R_NA] = len(codes)
            record[R_OUT] = out_row
            for aggr, w, feature in requested:
                row = out_row + codes.index(aggr.code) * nw + w
                features.append((row, self._aliases.get(feature, feature)))
            out_row += len(codes) * nw
            header[1 + a] = len(header) + len(body)
            body += record
        cfg = np.asarray(header + body, dtype=np.int64)
        max_values = np.asarray([group.layouts[i].max_value for i in by_layout], dtype=np.float64)
        return _QueryCall(group, cfg, max_values, out_row, features)

    def _init(self):
        super()._init()
        self._version = None
        if self._table._persists:
            self._register_stored()

    def _plan_for_table(self):
        """Nothing: the features to read are resolved per batch (`_resolve`)."""

    def _register_stored(self):
        """Registers the aggregators whose state the table's storage holds, so that their features
        can be read in a process that does not aggregate them (and load with the first keys)."""
        stored = self._table._stored_aggregators()
        state = aggregation_state(self._table)
        new = []
        for name, description in stored.items():
            if name in state.by_name:
                continue
            if REFERENCE_FORM in description:
                # storey 1.0.6 stored no windows: those the features ask for, as it reads them
                aggregator = aggregator_for_features(name, description, self._features)
                if aggregator is not None:
                    new.append(aggregator)
            else:
                new.append(aggregator_from_description(name, description))
        if new:
            state.register(new, aggregating=False)

    async def _do(self, batch):
        n = batch.n
        if n == 0:
            return
        table = self._table
        try:
            keys = self._keys.keys(batch)
            self._resolve()
            if table._persists or table._packed:
                known = [k for k in keys if k is not None]
                await table._ensure_loaded(known)
                if self._calls:
                    await table._aggregation_slots(known, [call.group for call in self._calls])
        except Exception as ex:
            ex.add_note(f"raised in step {self.name}")
            raise
        try:
            out = self._query(batch, keys)
        except Exception as ex:
            ex.add_note(f"raised in step {self.name}")
            raise
        await self._emit(out)

    def _query(self, batch, keys):
        n = batch.n
        state = aggregation_state(self._table)
        slots = state.existing_slots(keys)
        times = _kernel_times(self.name, batch)
        features = Features(n)
        fixed_mode = (
            MODE_LAST_CLOSED if self._fixed_window_type == FixedWindowType.LastClosedWindow else MODE_QUERY
        )
        for call in self._calls:
            group = call.group
            out = np.empty((call.n_features, n), dtype=np.float64)
            flags = np.zeros((call.n_features, n), dtype=np.uint8)
            if group.fixed:
                read, mode = self._loaded_kernels(n).fixed_read, fixed_mode
            else:
                read, mode = self._loaded_kernels(n).sliding_read, MODE_QUERY
            read(call.cfg, call.max_values, times, slots, mode, group.state, group.istate, out, flags)
            features.add_block(call.names, out, flags, call.rows)
        feature_dicts = features.dicts()
        if self._attributes:
            aliases = self._aliases
            get = self._table._get_static
            for found, key in zip(feature_dicts, keys):
                attributes = get(key) if key is not None else None
                if isinstance(attributes, dict):
                    for name in self._attributes:
                        if name in attributes:
                            found[aliases.get(name, name)] = attributes[name]
        bodies = batch.bodies_to_read()
        fn = self._augmentation_fn
        new_bodies = []
        for body, found, key in zip(bodies, feature_dicts, keys):
            if key is None:
                new_bodies.append(None)
            elif fn is not None:
                new_bodies.append(fn(body, found))
            elif isinstance(body, dict):
                found.update(body)
                new_bodies.append(found)
            else:
                new_bodies.append(body)
        out = batch.with_bodies(new_bodies)
        if self._keys.replaces_keys:
            event_keys = batch.keys
            out = out.with_keys([key if key is not None else ek for key, ek in zip(keys, event_keys)])
        return out


class _QueryCall:
    __slots__ = ("group", "cfg", "max_values", "n_features", "rows", "names")

    def __init__(self, group, cfg, max_values, n_features, features):
        self.group = group
        self.cfg = cfg
        self.max_values = max_values
        self.n_features = n_features
        self.rows = _rows([row for row, _ in features], n_features)
        self.names = [name for _, name in features]
