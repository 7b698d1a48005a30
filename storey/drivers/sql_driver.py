"""SQLDriver: tables in an SQL database through SQLAlchemy: SQLite (a file, nothing to start) or
PostgreSQL (a server).

A `Table` named `features` is three SQL tables:

- `features`: one row per key: the key columns (`primary_key`), then a column per static
  attribute, added when the attribute first appears (NULL where a key has none);
- `features__aggregations`: one row per key and aggregator: the key columns, `aggregator`, and the
  key's state of that aggregator (`floats`, `ints`: its float64 and int64 blocks, as bytes);
- `features__aggregators`: one row per aggregator: `name` and `description` (JSON), what made the
  state, so that it is never given to a different aggregator.

A flush is one transaction; a load is one SELECT per table and chunk of keys.
"""

import datetime
import json
import threading

import numpy as np

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.exc import DBAPIError, OperationalError
except ImportError as ex:  # pragma: no cover - SQLAlchemy is a dependency of storey
    raise ImportError(f"SQLDriver needs SQLAlchemy: pip install sqlalchemy ({ex})") from ex

from .driver import Driver, StoredKey

__all__ = ["SQLDriver"]

# keys per SELECT ... WHERE key IN (...)
_CHUNK = 500
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
_MEMORY = ("", ":memory:")


class SQLDriver(Driver):
    """Database connection to an SQL database (SQLite or PostgreSQL) through SQLAlchemy.

    Each table is an SQL table of the same name: one row per key, a column per static attribute.
    Window-aggregation state goes in a companion table (`<table>__aggregations`), with the
    description of the aggregators that made it (`<table>__aggregators`).

    :param primary_key: the key column: a name ('user'), or the columns of list keys (['a', 'b']
        or 'a.b').
    :param db_path: an SQLAlchemy database URL: 'sqlite:///features.db' (a file),
        'postgresql://user@host:port/db' (psycopg).
    :param time_fields: names of attributes stored as timestamps (with time zone). Optional.
    """

    def __init__(self, primary_key, db_path, time_fields=None):
        if isinstance(primary_key, str):
            key_columns = primary_key.split(".")
        elif isinstance(primary_key, list | tuple) and all(isinstance(part, str) for part in primary_key):
            key_columns = list(primary_key)
        else:
            key_columns = []
        if not key_columns or not all(key_columns):
            raise TypeError(
                f"SQLDriver: primary_key must be a column name or a list of them, got {primary_key!r}"
            )
        if not isinstance(db_path, str):
            raise TypeError(f"SQLDriver: db_path must be an SQLAlchemy URL string, got {db_path!r}")
        try:
            url = sa.engine.make_url(db_path)
        except Exception as ex:
            raise ValueError(f"SQLDriver: db_path {db_path!r} is not a database URL ({ex})") from None
        backend = url.get_backend_name()
        if backend not in _INSERTS:
            raise ValueError(
                f"SQLDriver: db_path {db_path!r}: only SQLite and PostgreSQL databases are supported"
            )
        if backend == "sqlite" and (url.database or "") in _MEMORY:
            raise ValueError(
                f"SQLDriver: db_path {db_path!r} is an in-memory SQLite database, which each connection "
                "sees empty: name a file ('sqlite:///features.db'), or keep the table in memory with "
                "NoopDriver"
            )
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        if time_fields is not None and (
            isinstance(time_fields, str) or not all(isinstance(name, str) for name in time_fields)
        ):
            raise TypeError(f"SQLDriver: time_fields must be a list of attribute names, got {time_fields!r}")
        self._key_columns = key_columns
        self._url = url
        self._backend = backend
        self._time_fields = set(time_fields or ())
        self._engine = None
        # table path -> its _SQLTables, as last read or changed (replaced, never changed in place:
        # loads and flushes run in two threads)
        self._tables = {}
        self._lock = threading.Lock()

    def __repr__(self):
        return f"SQLDriver({'.'.join(self._key_columns)!r}, {self._url.render_as_string()!r})"

    def _describe(self):
        return repr(self)

    # ---- the contract
    def _load_aggregation_schema(self, table):
        with self._connect().connect() as connection:
            tables = self._tables_of(table, connection)
            if tables is None or tables.aggregators is None:
                return {}
            rows = connection.execute(sa.select(tables.aggregators)).all()
        return {name: json.loads(description) for name, description in rows}

    def _load_keys(self, table, keys, aggregators):
        found = {}
        with self._connect().connect() as connection:
            tables = self._tables_of(table, connection)
            if tables is None:
                return {}
            by_row = {tables.encode(key): key for key in keys}
            rows = list(by_row)
            width = len(self._key_columns)
            static = tables.static
            attribute_columns = [c for c in static.c if c.name not in self._key_columns]
            if attribute_columns:
                key_columns = [static.c[column] for column in self._key_columns]
                for chunk in _chunks(rows):
                    query = sa.select(*key_columns, *attribute_columns).where(tables.key_in(static, chunk))
                    for row in connection.execute(query):
                        attributes = {
                            column.name: self._read_value(column, value)
                            for column, value in zip(attribute_columns, row[width:], strict=True)
                            if value is not None
                        }
                        found[by_row[tuple(row[:width])]] = StoredKey(attributes, {})
            if aggregators and tables.aggregations is not None:
                names = list(aggregators)
                # the driver's own cursor: rows as plain tuples
                cursor = connection.connection.cursor()
                cursor_dialect = connection.dialect
                for chunk in _chunks(rows):
                    sql = tables.states_query(cursor_dialect, len(chunk), len(names))
                    cursor.execute(sql, tuple([value for row in chunk for value in row] + names))
                    for row in cursor.fetchall():
                        key = by_row[row[:width]]
                        stored = found.get(key)
                        if stored is None:
                            stored = found[key] = StoredKey(None, {})
                        stored.aggregations[row[width]] = (bytes(row[width + 1]), bytes(row[width + 2]))
        return found

    def _save_keys(self, table, changes):
        try:
            with self._connect().begin() as connection:
                tables = self._tables_of(table, connection, create_for=changes)
                tables = self._with_columns(tables, connection, changes.attributes)
                self._save_attributes(tables, connection, changes.attributes)
                self._save_aggregations(tables, connection, changes)
        except BaseException:
            # the transaction rolled back: what was learnt of the tables may not hold
            with self._lock:
                self._tables.pop(table._table_path, None)
            raise

    def _is_transient(self, error):
        return isinstance(error, OperationalError) or (
            isinstance(error, DBAPIError) and error.connection_invalidated
        )

    async def _end_flow(self):
        with self._lock:
            engine, self._engine = self._engine, None
            self._tables = {}
        if engine is not None:
            engine.dispose()
        await super()._end_flow()

    # ---- connection and tables
    def _connect(self):
        with self._lock:
            if self._engine is None:
                # a dropped connection fails the call, which the table tries again (_is_transient)
                engine = sa.create_engine(self._url)
                if self._backend == "sqlite":
                    sa.event.listen(engine, "connect", _sqlite_pragmas)
                self._engine = engine
            return self._engine

    def _tables_of(self, table, connection, create_for=None):
        """The `_SQLTables` of `table`, read from the database once; None when they do not exist,
        unless `create_for` (a `Changes`) asks to create them (key columns typed by its keys)."""
        name = table._table_path
        tables = self._tables.get(name)
        if tables is not None:
            return tables
        inspector = sa.inspect(connection)
        metadata = sa.MetaData()
        if inspector.has_table(name):
            static = sa.Table(name, metadata, autoload_with=connection)
            self._check_key_columns(name, static)
        elif create_for is None:
            return None
        else:
            key_types = _key_types(self._key_columns, create_for.keys())
            static = sa.Table(
                name,
                metadata,
                *[sa.Column(column, key_types[column], nullable=False) for column in self._key_columns],
                sa.PrimaryKeyConstraint(*self._key_columns),
            )
            static.create(connection)
        aggregations = aggregators = None
        if inspector.has_table(f"{name}__aggregations"):
            aggregations = sa.Table(f"{name}__aggregations", metadata, autoload_with=connection)
            aggregators = sa.Table(f"{name}__aggregators", metadata, autoload_with=connection)
        elif create_for is not None:
            keys = [sa.Column(column, static.c[column].type, nullable=False) for column in self._key_columns]
            aggregations = sa.Table(
                f"{name}__aggregations",
                metadata,
                *keys,
                sa.Column("aggregator", sa.Text, nullable=False),
                sa.Column("floats", sa.LargeBinary, nullable=False),
                sa.Column("ints", sa.LargeBinary, nullable=False),
                sa.PrimaryKeyConstraint(*self._key_columns, "aggregator"),
            )
            aggregators = sa.Table(
                f"{name}__aggregators",
                metadata,
                sa.Column("name", sa.Text, primary_key=True),
                sa.Column("description", sa.Text, nullable=False),
            )
            metadata.create_all(connection, tables=[aggregations, aggregators])
        tables = _SQLTables(self._key_columns, static, aggregations, aggregators)
        with self._lock:
            self._tables[name] = tables
        return tables

    def _check_key_columns(self, name, static):
        primary = [column.name for column in static.primary_key.columns]
        if sorted(primary) != sorted(self._key_columns):
            raise ValueError(
                f"SQLDriver: table {name!r} has the key column(s) {primary!r}, not this driver's "
                f"primary_key {self._key_columns!r}"
            )

    def _with_columns(self, tables, connection, attributes):
        """`tables` with a column for every attribute of `attributes` (added to the database)."""
        names = {}
        for attrs, _ in attributes.values():
            for name, value in attrs.items():
                if name not in tables.static.c and name not in names and value is not None:
                    names[name] = self._column_type(name, value)
        if not names:
            return tables
        dialect = connection.dialect
        quoted = dialect.identifier_preparer.format_table(tables.static)
        for name, kind in names.items():
            column = sa.schema.CreateColumn(sa.Column(name, kind)).compile(dialect=dialect)
            connection.execute(sa.text(f"ALTER TABLE {quoted} ADD COLUMN {column}"))
        metadata = sa.MetaData()
        static = sa.Table(
            tables.static.name,
            metadata,
            *[
                sa.Column(c.name, c.type, nullable=c.nullable, primary_key=c.primary_key)
                for c in tables.static.c
            ],
            *[sa.Column(name, kind) for name, kind in names.items()],
        )
        tables = tables.with_static(static)
        with self._lock:
            self._tables[static.name] = tables
        return tables

    def _column_type(self, name, value):
        if name in self._time_fields:
            return sa.DateTime(timezone=True)
        value = _plain(value)
        if isinstance(value, bool):
            return sa.Boolean
        if isinstance(value, int):
            return sa.BigInteger
        if isinstance(value, float):
            return sa.Double
        if isinstance(value, datetime.datetime):
            return sa.DateTime(timezone=True)
        if isinstance(value, bytes):
            return sa.LargeBinary
        if isinstance(value, str):
            return sa.Text
        return sa.JSON

    # ---- writing
    def _save_attributes(self, tables, connection, attributes):
        static = tables.static
        insert = _INSERTS[self._backend]
        by_names = {}
        cleared = {}
        for key, (attrs, removed) in attributes.items():
            row = tables.key_row(key)
            values = {
                name: self._write_value(static.c[name], name, value, key)
                for name, value in attrs.items()
                if name in static.c
            }
            by_names.setdefault(tuple(sorted(values)), []).append({**row, **values})
            gone = tuple(sorted(name for name in removed if name in static.c))
            if gone:
                cleared.setdefault(gone, []).append(row)
        for names, rows in by_names.items():
            statement = insert(static)
            if names:
                statement = statement.on_conflict_do_update(
                    index_elements=self._key_columns, set_={name: statement.excluded[name] for name in names}
                )
            else:
                statement = statement.on_conflict_do_nothing(index_elements=self._key_columns)
            connection.execute(statement, rows)
        for names, rows in cleared.items():
            statement = (
                sa.update(static)
                .where(*[static.c[c] == sa.bindparam(f"key_{c}") for c in self._key_columns])
                .values({name: None for name in names})
            )
            connection.execute(statement, [{f"key_{c}": row[c] for c in self._key_columns} for row in rows])

    def _save_aggregations(self, tables, connection, changes):
        if not changes.aggregations:
            return
        insert = _INSERTS[self._backend]
        rows = []
        encode = tables.encode
        for aggregator in changes.aggregations:
            name = aggregator.name
            for key, floats, ints in zip(aggregator.keys, aggregator.floats, aggregator.ints, strict=True):
                rows.append((*encode(key), name, floats, ints))
        # the driver's executemany with the driver's own text: the rows are many and all alike
        connection.exec_driver_sql(tables.states_upsert(connection.dialect), rows)
        if changes.schema:
            statement = insert(tables.aggregators)
            statement = statement.on_conflict_do_update(
                index_elements=["name"], set_={"description": statement.excluded.description}
            )
            connection.execute(
                statement,
                [
                    {"name": name, "description": json.dumps(description)}
                    for name, description in changes.schema.items()
                ],
            )

    def _write_value(self, column, name, value, key):
        """`value` as `column` stores it; a value it cannot hold is refused here, naming the
        column (databases name the type, not the column)."""
        value = _plain(value)
        if value is None:
            return None
        kind = column.type
        if name in self._time_fields or isinstance(kind, sa.DateTime):
            return _as_timestamp(name, value)
        fits = next((check for base, check in _FITS.items() if isinstance(kind, base)), None)
        if fits is not None and not fits(value):
            raise ValueError(
                f"SQLDriver: column {name!r} ({kind}) of table {column.table.name!r} cannot hold "
                f"{value!r} ({type(value).__name__}) of key {key!r}"
            )
        return value

    def _read_value(self, column, value):
        if (
            isinstance(column.type, sa.DateTime)
            and isinstance(value, datetime.datetime)
            and value.tzinfo is None
        ):
            # SQLite keeps no zone: what was written was UTC
            return value.replace(tzinfo=datetime.UTC)
        return value


class _SQLTables:
    """The SQL tables of one storey table, and how its keys map to their key columns."""

    def __init__(self, key_columns, static, aggregations, aggregators):
        self.key_columns = key_columns
        self.static = static
        self.aggregations = aggregations
        self.aggregators = aggregators
        self._casts = [_cast_of(static.c[column].type) for column in key_columns]
        self._queries = {}
        self._upsert = None

    def with_static(self, static):
        return _SQLTables(self.key_columns, static, self.aggregations, self.aggregators)

    def encode(self, key):
        """The key column values of a table-form key (list keys are their parts joined by '.')."""
        casts = self._casts
        if len(casts) == 1:
            return (casts[0](key),)
        parts = str(key).split(".", len(casts) - 1)
        if len(parts) != len(casts):
            raise ValueError(
                f"SQLDriver: key {key!r} does not have the {len(casts)} parts of {self.key_columns!r}"
            )
        return tuple(cast(part) for cast, part in zip(casts, parts, strict=True))

    def key_row(self, key):
        return dict(zip(self.key_columns, self.encode(key), strict=True))

    def states_query(self, dialect, keys, names):
        """SQL selecting the key columns, aggregator, floats and ints of `keys` keys' states of
        `names` aggregators (as the driver's own text: loads of one key are the live path)."""
        cached = self._queries.get((keys, names))
        if cached is None:
            quote = dialect.identifier_preparer.quote
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            columns = [quote(column) for column in self.key_columns]
            if len(columns) == 1:
                match = f"{columns[0]} IN ({', '.join([mark] * keys)})"
            else:
                row = "(" + ", ".join([mark] * len(columns)) + ")"
                match = f"({', '.join(columns)}) IN ({', '.join([row] * keys)})"
            cached = (
                f"SELECT {', '.join(columns)}, aggregator, floats, ints "
                f"FROM {dialect.identifier_preparer.format_table(self.aggregations)} "
                f"WHERE {match} AND aggregator IN ({', '.join([mark] * names)})"
            )
            self._queries[(keys, names)] = cached
        return cached

    def states_upsert(self, dialect):
        """SQL inserting or replacing rows (key columns..., aggregator, floats, ints) of states."""
        if self._upsert is None:
            quote = dialect.identifier_preparer.quote
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            keys = [quote(column) for column in self.key_columns]
            columns = [*keys, "aggregator", "floats", "ints"]
            self._upsert = (
                f"INSERT INTO {dialect.identifier_preparer.format_table(self.aggregations)} "
                f"({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))}) "
                f"ON CONFLICT ({', '.join(keys)}, aggregator) "
                "DO UPDATE SET floats = excluded.floats, ints = excluded.ints"
            )
        return self._upsert

    def key_in(self, table, rows):
        columns = [table.c[column] for column in self.key_columns]
        if len(columns) == 1:
            return columns[0].in_([row[0] for row in rows])
        return sa.tuple_(*columns).in_(rows)


# what the columns of each type take (the database converts within these)
_FITS = {
    sa.Boolean: lambda v: isinstance(v, bool | int) and not isinstance(v, float),
    sa.Integer: lambda v: isinstance(v, int) and not isinstance(v, bool),
    sa.Float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    sa.Numeric: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    sa.String: lambda v: isinstance(v, str),
    sa.LargeBinary: lambda v: isinstance(v, bytes | bytearray | memoryview),
}


def _chunks(rows):
    for start in range(0, len(rows), _CHUNK):
        yield rows[start : start + _CHUNK]


def _key_types(key_columns, keys):
    """SQL types of the key columns of a new table, from the keys first written."""
    if len(key_columns) > 1 or not keys:
        return dict.fromkeys(key_columns, sa.Text)
    kinds = {type(_plain(key)) for key in keys}
    if kinds <= {int}:
        return {key_columns[0]: sa.BigInteger}
    return {key_columns[0]: sa.Text}


def _cast_of(kind):
    if isinstance(kind, sa.Integer):
        return int
    if isinstance(kind, sa.Float):
        return float
    return str


def _plain(value):
    """NumPy scalars and pandas Timestamps as the Python values SQL drivers take."""
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64):
            ns = int(value.astype("datetime64[ns]").astype(np.int64))
            return datetime.datetime.fromtimestamp(ns / 1e9, datetime.UTC)
        return value.item()
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    return value


def _as_timestamp(name, value):
    """A time attribute as an aware UTC datetime (naive datetimes are UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC)
    if isinstance(value, str):
        try:
            return _as_timestamp(name, datetime.datetime.fromisoformat(value))
        except ValueError:
            pass
    raise ValueError(f"SQLDriver: time field {name!r} must hold a datetime (or ISO text), got {value!r}")


def _sqlite_pragmas(connection, _):
    cursor = connection.cursor()
    # readers do not wait for a flush, and a flush waits for no reader
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
