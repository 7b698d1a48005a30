"""A storage driver for the tests: the driver contract (storey.drivers) over plain dicts, storing
bytes as a real store does, and counting the calls it gets."""

import copy

from storey.drivers import Driver
from storey.drivers.driver import StoredKey


class Store:
    """What a `MemoryDriver` keeps, shared by the drivers of several 'processes'."""

    def __init__(self):
        self.attributes = {}
        self.states = {}
        self.schema = {}


class MemoryDriver(Driver):
    """Keeps tables in a `Store`; records each call (`loads`: the keys asked for, `saves`: the
    `Changes`), and fails the next `fail_saves` saves."""

    def __init__(self, store=None, fail_saves=0, error=ConnectionError):
        self.store = store if store is not None else Store()
        self.loads = []
        self.saves = []
        self.schema_loads = 0
        self.fail_saves = fail_saves
        self.error = error

    def _load_aggregation_schema(self, table):
        self.schema_loads += 1
        return copy.deepcopy(self.store.schema.get(table._table_path, {}))

    def _load_keys(self, table, keys, aggregators):
        self.loads.append(list(keys))
        path = table._table_path
        found = {}
        for key in keys:
            attributes = self.store.attributes.get((path, key))
            states = {
                name: self.store.states[(path, key, name)]
                for name in aggregators
                if (path, key, name) in self.store.states
            }
            if attributes is not None or states:
                found[key] = StoredKey(dict(attributes) if attributes is not None else None, states)
        return found

    def _save_keys(self, table, changes):
        if self.fail_saves:
            self.fail_saves -= 1
            raise self.error("storage is down")
        self.saves.append(changes)
        path = table._table_path
        for key, (attributes, removed) in changes.attributes.items():
            item = self.store.attributes.setdefault((path, key), {})
            item.update(attributes)
            for name in removed:
                item.pop(name, None)
        for rows in changes.aggregations:
            for i, key in enumerate(rows.keys):
                self.store.states[(path, key, rows.name)] = (rows.floats[i], rows.ints[i])
        self.store.schema.setdefault(path, {}).update(copy.deepcopy(changes.schema))

    def _is_transient(self, error):
        return isinstance(error, ConnectionError)
