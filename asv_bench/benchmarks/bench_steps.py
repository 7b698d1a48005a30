"""The flow-level steps (Batch, SampleWindow, Choice, Partition, ReifyMetadata, Rename,
MapWithState, ToDataFrame, ReduceToDataFrame) on 50,000 events: emitted one by one through a
SyncEmitSource (the live path), and replayed from a DataFrame (the bulk path, columnar bodies).
Events per second: divide 50,000 by the time.
"""

N = 50_000


def _steps(name):
    from storey import (
        Batch,
        Choice,
        MapWithState,
        NoopDriver,
        Partition,
        Reduce,
        ReduceToDataFrame,
        ReifyMetadata,
        Rename,
        SampleWindow,
        Table,
        ToDataFrame,
    )

    def count():
        return Reduce(0, lambda acc, _: acc + 1)

    return {
        "Batch": lambda: [Batch(100), count()],
        "Batch_by_key": lambda: [Batch(100, key="$key"), count()],
        "SampleWindow": lambda: [SampleWindow(10), count()],
        "SampleWindow_by_field": lambda: [SampleWindow(10, key="tag"), count()],
        "Choice": lambda: [Choice([(count(), lambda body: body["v"] > 3)], default=count())],
        "Partition": lambda: [Partition(lambda event: event.body["v"] > 3), count()],
        "ReifyMetadata": lambda: [ReifyMetadata(["key", "time"]), count()],
        "Rename": lambda: [Rename({"v": "value"}), count()],
        "MapWithState": lambda: [MapWithState(0, lambda body, state: (body, state + 1)), count()],
        "MapWithState_table": lambda: [
            MapWithState(Table("t", NoopDriver()), lambda body, state: (body, {"n": 1}), group_by_key=True),
            count(),
        ],
        "ToDataFrame": lambda: [Batch(1000), ToDataFrame(), count()],
        "ReduceToDataFrame": lambda: [ReduceToDataFrame(insert_key_column_as="key")],
    }[name]()


STEPS = [
    "Batch",
    "Batch_by_key",
    "SampleWindow",
    "SampleWindow_by_field",
    "Choice",
    "Partition",
    "ReifyMetadata",
    "Rename",
    "MapWithState",
    "MapWithState_table",
    "ToDataFrame",
    "ReduceToDataFrame",
]


class LiveSteps:
    params = STEPS
    param_names = ["step"]
    timeout = 120

    def setup(self, step):
        self.bodies = [{"i": i, "v": i % 7, "tag": "xyz"[i % 3]} for i in range(N)]
        self.keys = [f"k{i % 100}" for i in range(N)]

    def time_emit(self, step):
        from storey import SyncEmitSource, build_flow

        controller = build_flow([SyncEmitSource(buffer_size=1000), *_steps(step)]).run()
        for body, key in zip(self.bodies, self.keys):
            controller.emit(body, key=key)
        controller.terminate()
        controller.await_termination()


class BulkSteps:
    params = STEPS
    param_names = ["step"]
    timeout = 120

    def setup(self, step):
        import numpy as np
        import pandas as pd

        i = np.arange(N)
        self.frame = pd.DataFrame(
            {
                "i": i,
                "v": i % 7,
                "tag": np.array(["x", "y", "z"], dtype=object)[i % 3],
                "k": [f"k{j % 100}" for j in i],
            }
        )

    def time_replay(self, step):
        from storey import DataframeSource, build_flow

        build_flow([DataframeSource(self.frame, key_field="k"), *_steps(step)]).run().await_termination()
