"""Where `--table URL` keeps a backfill's final per-key state: a Table over the driver the URL
names, so that a live service started later on it continues the same windows.

    sqlite:///features.db            SQLDriver on an SQLite file (table 'features')
    postgresql://user@host:5432/db   SQLDriver on PostgreSQL
    URL#name                         the table name inside the database (default: features)
"""

from dataclasses import dataclass

DEFAULT_NAME = "features"
SCHEMES = ("sqlite", "postgresql")


class TableUrlError(ValueError):
    """A --table URL the command line cannot use."""


@dataclass(frozen=True)
class TableUrl:
    """A parsed --table URL: the database URL, the table's name in it, and the driver class."""

    database: str
    name: str

    @property
    def driver_class(self):
        return "SQLDriver"

    def driver_args(self, key):
        """(args, kwargs) of the driver for the key column(s) `key`."""
        return [key[0] if len(key) == 1 else list(key), self.database], {}

    def table(self, key):
        """The Table this URL names, for the key column(s) `key`."""
        from storey import SQLDriver, Table

        args, kwargs = self.driver_args(key)
        return Table(self.name, SQLDriver(*args, **kwargs))


def parse_table_url(text):
    """The `TableUrl` of `text`, or a TableUrlError saying what is wrong."""
    database, _, name = text.partition("#")
    scheme = database.partition(":")[0].partition("+")[0]
    if scheme not in SCHEMES or "://" not in database:
        raise TableUrlError(
            f"--table {text!r}: expected sqlite:///FILE or postgresql://USER@HOST:PORT/DB "
            "(optionally #TABLE_NAME)"
        )
    if scheme == "sqlite" and database.split("://", 1)[1] in ("", "/", "/:memory:"):
        raise TableUrlError(f"--table {text!r}: name an SQLite file, e.g. sqlite:///features.db")
    return TableUrl(database, name or DEFAULT_NAME)
