"""The 'pandas' schema metadata of a Parquet file, so that pandas reads back the index columns as
the index and the columns with the dtypes the reference's files give them."""

import functools
import importlib.metadata
import json

import pyarrow as pa

from ...core.lazy import loaded


def _types(typ, nullable):
    if pa.types.is_timestamp(typ):
        if typ.tz is not None:
            return "datetimetz", f"datetime64[{typ.unit}]", {"timezone": typ.tz}
        return "datetime", f"datetime64[{typ.unit}]", None
    if pa.types.is_boolean(typ):
        return "bool", "object" if nullable else "bool", None
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        name = {"halffloat": "float16", "float": "float32", "double": "float64"}.get(str(typ), str(typ))
        return name, name, None
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "unicode", "object", None
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        return "bytes", "object", None
    if pa.types.is_null(typ):
        return "empty", "object", None
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return f"list[{_types(typ.value_type, True)[0]}]", "object", None
    if pa.types.is_decimal(typ):
        return "decimal", "object", {"precision": typ.precision, "scale": typ.scale}
    if pa.types.is_date(typ):
        return "date", "object", None
    return "object", "object", None


@functools.cache
def _pandas_version():
    """pandas' version, without importing pandas (a flow that builds no DataFrame never does)."""
    pandas = loaded("pandas")
    return pandas.__version__ if pandas is not None else importlib.metadata.version("pandas")


def with_pandas_metadata(table, index_names=()):
    """`table` with 'pandas' metadata naming `index_names` as its index columns."""
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        pandas_type, numpy_type, meta = _types(field.type, column.null_count > 0)
        columns.append(
            {
                "name": field.name,
                "field_name": field.name,
                "pandas_type": pandas_type,
                "numpy_type": numpy_type,
                "metadata": meta,
            }
        )
    metadata = {
        "index_columns": list(index_names),
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": columns,
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": _pandas_version(),
    }
    return table.replace_schema_metadata({b"pandas": json.dumps(metadata).encode()})
