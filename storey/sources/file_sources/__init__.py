"""Sources that replay stored events: DataframeSource, ParquetSource, CSVSource.

They read in bounded batches (pyarrow record batches for files) in a worker thread and hand the
flow columnar `EventBatch`es: a flow with no user function in it never builds row dicts.
"""

from .csv_source import CSVSource
from .dataframe_source import DataframeSource
from .parquet_source import ParquetSource

__all__ = ["CSVSource", "DataframeSource", "ParquetSource"]
