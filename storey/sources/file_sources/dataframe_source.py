"""DataframeSource: the rows of pandas DataFrames as events, in column form."""

import pandas as pd

from .event_fields import EventFields
from .frame_columns import FrameFields
from .replay import ReplaySource
from .source_checks import check_field

# Rows per batch (of every replay source): large enough that the work per batch outweighs the
# Python around it (10k-row batches cost a CSV copy 10% more), small enough to stream.
BATCH_ROWS = 65_536


class DataframeSource(ReplaySource):
    """Use pandas dataframe as input source for a flow.

    Each row becomes an event whose body is a dict of the row's fields (named index levels
    included); rows whose key is missing are skipped.

    :param dfs: A pandas dataframe, or dataframes, to be used as input source for the flow.
    :param key_field: column to be used as key for events. can be list of columns
    :param time_field: column to be used as time for events.
    :param id_field: column to be used as ID for events.

    for additional params, see documentation of Flow
    """

    def __init__(self, dfs, key_field=None, time_field=None, id_field=None, **kwargs):
        super().__init__(**kwargs)
        for param, value in (("key_field", key_field), ("time_field", time_field), ("id_field", id_field)):
            if value is not None:
                self._describe(**{param: value})
        if isinstance(dfs, pd.DataFrame):
            dfs = [dfs]
        elif isinstance(dfs, dict | str | bytes) or not hasattr(dfs, "__iter__"):
            raise TypeError(
                f"{self.name}: dfs must be a DataFrame or an iterable of DataFrames, got {type(dfs).__name__}"
            )
        self._dfs = dfs
        self._key_field = check_field(self.name, "key_field", key_field, allow_int=True, allow_list=True)
        self._time_field = check_field(self.name, "time_field", time_field, allow_int=True)
        self._id_field = check_field(self.name, "id_field", id_field, allow_int=True)

    def _batches(self, ids):
        for number, df in enumerate(self._dfs):
            if not isinstance(df, pd.DataFrame):
                raise TypeError(
                    f"{self.name}: dfs must hold DataFrames, item {number} is a {type(df).__name__}"
                )
            frame = FrameFields(df)
            where = f"DataFrame {number}"
            fields = self._event_fields(frame, where)
            for start in range(0, frame.n, BATCH_ROWS):
                yield fields.batch(frame.columns(start, start + BATCH_ROWS), ids, where)

    def _event_fields(self, frame, where):
        def field(param, name):
            body_field = frame.field(name)
            if body_field is None:
                raise KeyError(
                    f"{self.name}: {param} {name!r} is not a column of {where} (columns: {list(frame.data)})"
                )
            return body_field

        key = self._key_field
        if isinstance(key, list):
            key = [field("key_field", k) for k in key]
        elif key is not None:
            key = field("key_field", key)
        time = None if self._time_field is None else field("time_field", self._time_field)
        id_ = None if self._id_field is None else field("id_field", self._id_field)
        return EventFields(key=key, time=time, id=id_)
