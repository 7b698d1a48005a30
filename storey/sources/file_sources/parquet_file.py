"""One Parquet file read with `pyarrow.parquet`, for the reads that need nothing of a dataset (no
partitions, no row filter): `pyarrow.dataset` imports pandas, 0.3 s of a backfill's start-up."""

from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq


class ParquetFileDataset:
    """A Parquet file behind the part of `pyarrow.dataset.Dataset` that ParquetSource uses: its
    schema, its one fragment's metadata, and its record batches (no filter). The file is open
    only while it is read."""

    partitioning = None

    def __init__(self, path, filesystem):
        self._path = path
        self._filesystem = filesystem
        with self._open() as parquet_file:
            self.schema = parquet_file.schema_arrow
            self.metadata = parquet_file.metadata

    def get_fragments(self, filter=None):
        _check_no_filter(filter)
        return [self]

    def to_batches(self, columns, filter=None, batch_size=65_536, **_readahead):
        """The record batches of `columns`, each decoded in a thread of its own while the one
        before it is used."""
        _check_no_filter(filter)
        with self._open(self.metadata) as parquet_file:
            batches = parquet_file.iter_batches(batch_size=batch_size, columns=columns)
            with ThreadPoolExecutor(1, thread_name_prefix="storey-parquet-read") as reader:
                coming = reader.submit(next, batches, None)
                while (batch := coming.result()) is not None:
                    coming = reader.submit(next, batches, None)
                    yield batch if batch.schema.names == columns else batch.select(columns)

    def _open(self, metadata=None):
        # pre-buffering reads a file's row groups ahead without bound (a whole 2 GB file): off
        return pq.ParquetFile(self._path, filesystem=self._filesystem, metadata=metadata, pre_buffer=False)


def _check_no_filter(row_filter):
    if row_filter is not None:
        raise ValueError("a row filter needs pyarrow.dataset: read the file as a dataset")
