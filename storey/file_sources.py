"""Sources that replay stored events: DataframeSource, ParquetSource, CSVSource."""

__all__ = []
