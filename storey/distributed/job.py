"""What the tasks of one distributed backfill share: a picklable description, sent to every task.

Where things are, in the output directory OUT (a local path or an fsspec URL every worker sees):

    OUT/part-00000.parquet ...                  the output: one file per partition, when complete
    OUT/_shuffle-RUN/part-00000/unit-000000.pieces
                                                 the events one shuffle task sent to a partition
                                                 (removed at the end of the run)

Names starting with '_' or '.' are not part of a Parquet dataset for pyarrow, pandas, Spark or
Dask, so OUT reads as the dataset of its part files even while the run goes on.
"""

import os
import posixpath
from dataclasses import dataclass

from storey.drivers import NoopDriver
from storey.sources import CSVSource, ParquetSource
from storey.table import Table

from .fresh_state import FreshState


def join(base, *names):
    """`names` under the directory `base`, a local path or a URL."""
    if "://" in base:
        return posixpath.join(base.rstrip("/"), *names)
    return os.path.join(base, *names)


@dataclass(frozen=True)
class BackfillJob:
    """One distributed backfill: its input, how events are split, the flow run on each partition,
    and where everything is written.

    `units` are what the shuffle tasks read, in arrival order (a file, or a directory read as
    one dataset); `source_kwargs` are the source step's arguments (as the single-process backfill
    gives them); `steps(table)` makes the steps run on each partition between its source and its
    Parquet target; `table` (a `storey.cli.table_urls.TableUrl`, or None) is where each
    partition's final per-key state goes.
    """

    format: str
    units: tuple
    source_kwargs: dict
    key: tuple
    partitions: int
    out: str
    run: str
    steps: object
    table: object = None
    storage_options: dict | None = None
    topic: str | None = None

    @property
    def shuffle_dir(self):
        return join(self.out, f"_shuffle-{self.run}")

    def piece_path(self, unit, partition):
        return join(self.shuffle_dir, f"part-{partition:05d}", f"unit-{unit:06d}.pieces")

    def output_path(self, partition):
        return join(self.out, f"part-{partition:05d}.parquet")

    def source_step(self, unit):
        """The source step reading unit `unit` (an index into `units`)."""
        cls = ParquetSource if self.format == "parquet" else CSVSource
        kwargs = dict(self.source_kwargs)
        if self.storage_options:
            kwargs["storage_options"] = self.storage_options
        return cls(self.units[unit], **kwargs)

    def partition_table(self):
        """The table a partition's flow aggregates into: in memory, or over the --table driver,
        seen empty (see `FreshState`)."""
        if self.table is None:
            return Table("features", NoopDriver())
        return Table(self.table.name, FreshState(self.table.driver(list(self.key))))
