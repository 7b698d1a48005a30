"""What each shuffle task reads: one file of SOURCE, or a directory read as one dataset.

The single-process backfill reads its files one after the other, each as its source reads a file
alone (a CSV file's types are inferred from its own first block; a Parquet file's integer column
holds floats when it has a null). A shuffle task reading one of those files with the same source
therefore reads exactly the events the single-process run reads from it.

A Parquet directory is read by the single-process backfill as one dataset: hive partition
directories (`date=2024-01-01/`) give columns, and an integer column with a null in any file
holds floats in every file. It is split into one task per file only when reading each file alone
gives the same: no partition directories, every file of the dataset's schema, and each integer
column either with nulls in every file or in none (known from the files' statistics). Otherwise
one task reads the whole directory.
"""

import pyarrow as pa
import pyarrow.dataset as ds

from storey.cli.inputs import _with_protocol
from storey.core.storage import get_filesystem
from storey.sources.file_sources.locations import arrow_filesystem


def read_units(input, storage_options=None):
    """The paths the shuffle tasks read, in the order the single-process backfill reads them."""
    if input.format != "parquet" or len(input.paths) != 1:
        return list(input.paths)
    path = input.paths[0]
    fs, inner = get_filesystem(path, storage_options)
    if not fs.isdir(inner):
        return [path]
    files = _files_read_alone_alike(*arrow_filesystem(path, storage_options))
    if files is None:
        return [path]
    return [_with_protocol(fs, path, f) for f in files]


def _files_read_alone_alike(fs, directory):
    """The files of the dataset `directory` (found as ParquetSource finds them, in its reading
    order), when each read alone gives what the dataset gives for it; else None."""
    dataset = ds.dataset(directory, filesystem=fs, format="parquet", partitioning="hive")
    fragments = list(dataset.get_fragments())
    if not fragments or any(not f.partition_expression.equals(ds.scalar(True)) for f in fragments):
        return None
    schema = dataset.schema
    if any(not f.physical_schema.equals(schema, check_metadata=True) for f in fragments):
        return None
    ints = [field.name for field in schema if pa.types.is_integer(field.type)]
    with_nulls = [_int_columns_with_nulls(f, ints) for f in fragments]
    if None in with_nulls or any(nulls != with_nulls[0] for nulls in with_nulls):
        return None
    return [f.path for f in fragments]


def _int_columns_with_nulls(fragment, names):
    """The set of the columns `names` that hold a null in the fragment's file; None when that is
    not known from its row groups' statistics."""
    metadata = fragment.metadata
    positions = {metadata.schema.column(i).name: i for i in range(metadata.num_columns)}
    if any(name not in positions for name in names):
        return None
    found = set()
    for g in range(metadata.num_row_groups):
        row_group = metadata.row_group(g)
        for name in names:
            stats = row_group.column(positions[name]).statistics
            if stats is None or not stats.has_null_count:
                return None
            if stats.null_count:
                found.add(name)
    return frozenset(found)
