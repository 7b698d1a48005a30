"""One schema for the output's part files, as the single-process backfill's one file has.

ParquetTarget types a file from all of its rows: an integer column with a null holds floats, a
column with no value is of type null, and when a later part of a file brings other types the
file is written again with the types of all of it. Each partition's file is typed from the
partition's rows alone, so a column can come out as int64 in one part file and double in another
(or null and string). The run then promotes them as the single file's types are promoted (arrow's
permissive unification: int64 and double give double, null and string give string; a column
missing from a part is null there) and writes again, in a task each, the part files of other
types.
"""

import pyarrow as pa
import pyarrow.parquet as pq

from storey.core.storage import get_filesystem
from storey.targets.file_targets.pandas_metadata import with_pandas_metadata
from storey.targets.file_targets.parquet_files import write_file


def read_schema(path, storage_options=None):
    fs, inner = get_filesystem(path, storage_options)
    with fs.open(inner, "rb") as f:
        return pq.read_schema(f)


def unified_schema(schemas):
    """The schema every part file should have, or None when they all have the same types."""
    first = schemas[0]
    if all(schema.equals(first, check_metadata=False) for schema in schemas[1:]):
        return None
    return pa.unify_schemas(schemas, promote_options="permissive")


def retype_file(path, schema, storage_options=None):
    """Task: writes the part file `path` again with the column types of `schema`."""
    fs, inner = get_filesystem(path, storage_options)
    with fs.open(inner, "rb") as f:
        table = pq.read_table(f)
    columns = [
        table.column(field.name).cast(field.type)
        if field.name in table.column_names
        else pa.nulls(table.num_rows, field.type)
        for field in schema
    ]
    write_file(
        fs, inner, with_pandas_metadata(pa.Table.from_arrays(columns, schema=schema.remove_metadata()))
    )
