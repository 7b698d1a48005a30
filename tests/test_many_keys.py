"""Any number of keys, in batches of any size: new keys get slots in order of first appearance,
and a batch whose new keys outnumber the table's old ones many times over is still aggregated."""

from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from storey import (
    AggregateByKey,
    FieldAggregator,
    NoopDriver,
    ParquetSource,
    Reduce,
    SlidingWindows,
    Table,
    build_flow,
)
from storey.table.aggregation_state import AggregationState

T0 = datetime(2024, 1, 1)


class TextKeys(list):
    """The keys of a batch read from a text column: a list that also gives itself as Arrow."""

    def arrow(self):
        return pa.array(self, pa.string())


def test_a_file_whose_second_row_group_brings_more_new_keys_than_the_table_held(tmp_path):
    path = str(tmp_path / "events.parquet")
    keys = ["a", "b", "c", "d", "e"]
    table = pa.table(
        {
            "k": keys,
            "t": pa.array([T0 + timedelta(minutes=i) for i in range(5)], pa.timestamp("us")),
            "v": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    pq.write_table(table, path, row_group_size=4)
    assert pq.ParquetFile(path).metadata.num_row_groups == 2
    aggregator = FieldAggregator("v", "v", ["sum", "count"], SlidingWindows(["1h"], "10m"))
    flow = build_flow(
        [
            ParquetSource(path, key_field="k", time_field="t"),
            AggregateByKey([aggregator], Table("t", NoopDriver())),
            Reduce([], lambda acc, body: [*acc, body]),
        ]
    )
    rows = flow.run().await_termination()
    # every key appears once: each event's window holds itself alone
    assert [(r["k"], r["v_sum_1h"], r["v_count_1h"]) for r in rows] == [
        (k, v, 1.0) for k, v in zip(keys, [1.0, 2.0, 3.0, 4.0, 5.0], strict=True)
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(st.integers(0, 3000), min_size=1, max_size=400), st.booleans()),
        min_size=1,
        max_size=8,
    )
)
def test_slots_follow_first_appearance_whatever_the_batches(batches):
    state = AggregationState()
    expected = {}
    for numbers, as_arrow in batches:
        keys = [f"user_{n}" for n in numbers]
        for key in keys:
            expected.setdefault(key, len(expected))
        slots = state.slots_of(TextKeys(keys) if as_arrow else keys)
        assert slots.tolist() == [expected[k] for k in keys]
    assert state.keys == list(expected)
