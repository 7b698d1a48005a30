"""Where `--table URL` keeps a backfill's final per-key state: a Table over the driver the URL
names, so that a live service started later on it continues the same windows.

    sqlite:///features.db            SQLDriver on an SQLite file (table 'features')
    postgresql://user@host:5432/db   SQLDriver on PostgreSQL
    redis://host:6379/0              RedisDriver (rediss:// for TLS; the storey[redis] extra)
    URL#name                         the table's name in the database (its path in Redis;
                                     default: features)
    v3io:///container/path           V3ioDriver: the V3IO table at that path (V3IO_API and
                                     V3IO_ACCESS_KEY say where and who)
"""

from dataclasses import dataclass

DEFAULT_NAME = "features"
# URL scheme -> the driver class that keeps tables there
DRIVERS = {
    "sqlite": "SQLDriver",
    "postgresql": "SQLDriver",
    "redis": "RedisDriver",
    "rediss": "RedisDriver",
    "v3io": "V3ioDriver",
}


class TableUrlError(ValueError):
    """A --table URL the command line cannot use."""


@dataclass(frozen=True)
class TableUrl:
    """A parsed --table URL: the database URL (None for V3IO, whose place comes from the
    environment), the table's name (path) in it, and the driver class."""

    database: str | None
    name: str
    driver_class: str

    def driver_args(self, key):
        """(args, kwargs) of the driver for the key column(s) `key`."""
        if self.driver_class == "RedisDriver":
            return [], {"redis_url": self.database}
        if self.driver_class == "V3ioDriver":
            return [], {}
        return [key[0] if len(key) == 1 else list(key), self.database], {}

    def driver(self, key):
        """The driver of the database this URL names, for the key column(s) `key`."""
        import storey

        args, kwargs = self.driver_args(key)
        return getattr(storey, self.driver_class)(*args, **kwargs)

    def table(self, key):
        """The Table this URL names, for the key column(s) `key`."""
        import storey

        return storey.Table(self.name, self.driver(key))


def _scheme(database):
    return database.partition(":")[0].partition("+")[0]


def parse_table_url(text):
    """The `TableUrl` of `text`, or a TableUrlError saying what is wrong."""
    if text.startswith("v3io:"):
        path = text[len("v3io:") :]
        if not path.startswith("///") or "#" in path or not path.strip("/").count("/"):
            raise TableUrlError(f"--table {text!r}: expected v3io:///CONTAINER/PATH/TO/TABLE")
        return TableUrl(None, path.strip("/"), DRIVERS["v3io"])
    database, _, name = text.partition("#")
    scheme = _scheme(database)
    if scheme not in DRIVERS or "://" not in database:
        raise TableUrlError(
            f"--table {text!r}: expected sqlite:///FILE, postgresql://USER@HOST:PORT/DB or "
            "redis://HOST:PORT/DB (optionally #TABLE_NAME), or v3io:///CONTAINER/PATH"
        )
    if scheme == "sqlite" and database.split("://", 1)[1] in ("", "/", "/:memory:"):
        raise TableUrlError(f"--table {text!r}: name an SQLite file, e.g. sqlite:///features.db")
    return TableUrl(database, name or DEFAULT_NAME, DRIVERS[scheme])
