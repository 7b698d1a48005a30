"""Storage drivers for tables: Driver, NoopDriver, SQLDriver, V3ioDriver, RedisDriver, one module each.

The contract a driver follows (a new driver is one module, a subclass of `Driver`):

- **What a table asks.** A `Table` is a cache in front of its driver. It calls the driver's hooks
  itself, with whole batches of keys in the table's form (a list key `['a', 1]` is the string
  `'a.1'`), never one call per event:

  - `_load_aggregation_schema(table)`: the descriptions of the aggregators whose state the storage
    holds for the table (a dict name -> description, see below); once per table;
  - `_load_keys(table, keys, aggregators)`: everything the storage holds for those keys, as a dict
    key -> `StoredKey(attributes, aggregations)`: the static attributes (a dict, or None) and, for
    each of the aggregator names `aggregators` it holds state of, that state (two bytes values,
    as a flush gave them). Keys it holds nothing for are left out. One call per batch for all the
    keys the batch needs and the table has not loaded yet (the first time any step needs a key,
    whatever the step: AggregateByKey, QueryByKey, JoinWithTable, MapWithState, NoSqlTarget);
  - `_save_keys(table, changes)`: one flush (`Changes`): attributes to set and to remove per key,
    the changed state of each aggregator (`AggregatorRows`), and the descriptions of aggregators
    the storage does not hold yet. **All or nothing**: when it raises, nothing of it is saved (a
    storage without transactions over keys, V3IO, writes key by key, absolute values: a failed
    flush may have written some keys, which the next flush writes again, unchanged).

- **When.** Flushes happen every `flush_interval_secs` (after each batch when None or 0), at the
  end of each flow (also a failed one: what was aggregated before the error is saved) and at
  `Table.close()`. The table writes them in a thread of its own, one at a time, so the flow goes
  on while a flush is written; `table._max_updates_in_flight` bounds the concurrent requests a
  driver may make within one flush. Loads run in the flow's thread when the flow runs inline (the
  emitter waits for the answer anyway), in a worker thread otherwise: hooks are plain, blocking
  functions, and a driver built on an asyncio client runs it on a loop of its own (`AsyncBridge`).

- **Faults.** `_is_transient(error)` says whether an error may pass (a dropped connection, a
  restarting server): the table then tries the call again, waiting `_backoff_secs`, doubled each
  time, up to `_retries` times. Any other failure, or the last one, fails the flow with an error
  naming the table, what could not be done and the keys; a failed flush's changes stay in the
  table for the next one. `_describe()` names the driver and where it stores in those errors.

- **State is never misread.** Aggregation state is stored with the description of the aggregator
  that made it (field, aggregations, kind of windows, windows, period, kept statistics,
  max_value, layout version, block sizes; `storey.table.aggregation_state.describe`). A flow whose
  aggregator of the same name differs fails at its first load with a `ValueError` naming the table
  and the difference; an aggregator the storage holds nothing of starts empty. Drivers store the
  descriptions and state as they get them; they need not understand them.

- `_end_flow()` (async): a flow using the driver ended: release its connections (a later flow
  opens them again); `close()`: the same, for good.

A driver written against storey 1.0.6's per-key hooks (`_save_key`, `_load_by_key`) is driven
through them for static attributes; its aggregation hooks (`_load_aggregates_by_key`,
`_save_schema`, `_load_schema`) take storey 1.0.6's own objects, and a step that would need them
is refused when it is built.
"""

from ..core.lazy import lazy_exports
from .driver import Driver
from .noop_driver import NoopDriver

__all__ = ["Driver", "NeedsV3ioAccess", "NoopDriver", "SQLDriver", "V3ioDriver"]

# drivers whose client library loads only when they are used (RedisDriver's comes with the
# storey[redis] extra: it is left out of `import *`)
__getattr__ = lazy_exports(
    __name__,
    {
        "NeedsV3ioAccess": "storey.drivers.v3io_driver",
        "RedisDriver": "storey.drivers.redis_driver",
        "SQLDriver": "storey.drivers.sql_driver",
        "V3ioDriver": "storey.drivers.v3io_driver",
    },
)
