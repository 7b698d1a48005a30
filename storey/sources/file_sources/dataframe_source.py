"""DataframeSource: the rows of pandas DataFrames as events, in column form."""

from ...core.lazy import loaded
from ...core.times import TimeOutOfRange
from .event_fields import EventFields, check_time_unit
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
    :param time_unit: the unit of an integer time column: 's' (epoch seconds, the default),
        'ms', 'us' or 'ns'. Not in storey 1.0.6, which reads integers as epoch seconds.

    for additional params, see documentation of Flow
    """

    def __init__(self, dfs, key_field=None, time_field=None, id_field=None, time_unit=None, **kwargs):
        super().__init__(**kwargs)
        for param, value in (
            ("key_field", key_field),
            ("time_field", time_field),
            ("id_field", id_field),
            ("time_unit", time_unit),
        ):
            if value is not None:
                self._describe(**{param: value})
        self._time_unit = check_time_unit(self.name, time_unit)
        if _is_frame(dfs):
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
            if not _is_frame(df):
                raise TypeError(
                    f"{self.name}: dfs must hold DataFrames, item {number} is a {type(df).__name__}"
                )
            where = f"DataFrame {number}"
            try:
                frame = FrameFields(df)
            except TimeOutOfRange as ex:
                raise TimeOutOfRange(f"{self.name}: {where}, {ex}", ex.index, ex.detail) from None
            fields = self._event_fields(frame, where)
            for start in range(0, frame.n, BATCH_ROWS):
                columns = frame.columns(start, start + BATCH_ROWS)
                yield fields.batch(columns, ids, where, first_row=start + 1)

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
        labels = {} if time is None else {time: self._time_field}
        return EventFields(
            key=key,
            time=time,
            id=id_,
            time_unit=self._time_unit,
            step=self.name,
            labels=labels,
            on_skipped=self._count_skipped,
        )


def _is_frame(value):
    pandas = loaded("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)
