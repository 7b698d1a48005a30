"""Steps that build pandas DataFrames: ToDataFrame, ReduceToDataFrame."""

__all__ = []
