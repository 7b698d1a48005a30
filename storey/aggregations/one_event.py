"""The kernels' arrays for a batch of one event whose body is a row (a live emit): a step keeps
them from event to event, where a batch allocates its own."""

import numpy as np

from ..core.times import TimeOutOfRange
from .keys_and_values import one_value

__all__ = ["OneEventArrays"]


class OneEventArrays:
    """The `times`, `values` and `valid` of one event for the kernels (see `fill_values`), the
    last row of `values`/`valid` being the row without a value (for the table's aggregators that
    other steps aggregate); `outputs`, the (out, flags) each kernel call writes its features to;
    and `features`, the step's `Features` over them. Every event overwrites them: an event's
    features are read before the next comes."""

    __slots__ = ("times", "values", "valid", "outputs", "features")

    def __init__(self, n_aggregators, n_features):
        self.times = np.zeros(1, dtype=np.int64)
        self.values = np.zeros((n_aggregators + 1, 1), dtype=np.float64)
        self.valid = np.zeros((n_aggregators + 1, 1), dtype=np.uint8)
        self.outputs = [
            (np.zeros((n, 1), dtype=np.float64), np.zeros((n, 1), dtype=np.uint8)) for n in n_features
        ]
        self.features = None

    def fill(self, step_name, aggregators, batch):
        """Writes the inputs of the one event of `batch`; zeroes the flags of the outputs."""
        try:
            self.times[0] = batch.time_ns(0)
        except TimeOutOfRange as ex:
            raise TimeOutOfRange(f"{step_name}: {ex}", 0) from None
        body = batch.bodies_to_read()[0]
        values = self.values
        valid = self.valid
        for a, aggregator in enumerate(aggregators):
            value = one_value(step_name, aggregator, body)
            if value is None:
                valid[a, 0] = 0
            else:
                values[a, 0] = value
                valid[a, 0] = 1
        for _, flags in self.outputs:
            flags.fill(0)
