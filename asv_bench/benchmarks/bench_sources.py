"""The replay sources on 1M rows (key, time, int, float, string columns).

For Parquet and CSV input:
- `time_plain_pyarrow`: pyarrow reads the file in batches and writes it back (the streaming
  floor); `time_plain_pyarrow_whole_file`: pyarrow reads the whole file (with its threads) and
  writes it back;
- `time_read`: the source alone into a step that only counts (columns and times made, no rows
  or keys); `peakmem_read` its peak memory (files are streamed, never loaded whole);
- `time_passthrough`: source -> target of the same format, no user function (columnar);
- `track_passthrough_vs_pyarrow_*`: pyarrow's time over the passthrough's, both measured in
  the same process, alternately (best of 3 each): the issue's target is >= 0.9;
- `time_map_filter`: source -> Map -> Filter -> target (rows built for the user functions).
`DataframeRead` times DataframeSource alone. Rows per second: divide 1M by the time.
"""

import os
import shutil
import tempfile
import time

import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

N = 1_000_000
RATIO_UNIT = "pyarrow time / flow time (target >= 0.9)"


def pyarrow_copy(kind, path, out, streaming):
    """A plain pyarrow read + write of a Parquet or CSV file: in batches, as a streaming flow
    reads and writes, or the whole file at once (read with pyarrow's threads)."""
    if kind == "parquet":
        if not streaming:
            pq.write_table(pq.read_table(path), out)
            return
        writer = None
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65536):
            if writer is None:
                writer = pq.ParquetWriter(out, batch.schema)
            writer.write_batch(batch)
        writer.close()
    elif not streaming:
        pacsv.write_csv(pacsv.read_csv(path), out)
    else:
        reader = pacsv.open_csv(path)
        with pacsv.CSVWriter(out, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)


def speed_ratio(floor, flow, rounds=3, warmup=2):
    """The best time of `floor()` over the best time of `flow()`, run alternately, after
    `warmup` runs of the flow (a process that has written 2M floats has loaded the compiled
    float kernel: the steady state)."""
    for _ in range(warmup):
        flow()
    floor_times, flow_times = [], []
    for _ in range(rounds):
        for run, times in ((floor, floor_times), (flow, flow_times)):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    return min(floor_times) / min(flow_times)


def _frame(n=N):
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2020-01-01", tz="UTC").value
    return pd.DataFrame(
        {
            "k": np.array(["alice", "bob", "carol", "dave"], dtype=object)[rng.integers(0, 4, n)],
            "t": pd.to_datetime(start + np.arange(n, dtype=np.int64) * 10**9, utc=True),
            "v": rng.integers(0, 100, n),
            "w": rng.random(n),
            "s": [f"s{i}" for i in range(n)],
        }
    )


def _counter():
    from storey.flow import Flow

    class Count(Flow):
        _takes_batches = True  # its _do takes EventBatches

        def _init(self):
            self.n = 0

        async def _do(self, batch):
            self.n += batch.n

        async def _on_terminate(self):
            return self.n

    return Count()


def _source(kind, path):
    from storey import CSVSource, ParquetSource

    if kind == "parquet":
        return ParquetSource(path, key_field="k", time_field="t")
    return CSVSource(path, header=True, build_dict=True, key_field="k", time_field="t")


def _target(kind, out):
    from storey import CSVTarget, ParquetTarget

    if kind == "parquet":
        return ParquetTarget(os.path.join(out, "out.parquet"))
    return CSVTarget(os.path.join(out, "out.csv"), header=True)


class FileSources:
    params = ["parquet", "csv"]
    param_names = ["format"]
    timeout = 300

    def setup_cache(self):
        # asv runs this in a directory of its own, removed after the run
        folder = os.path.abspath("bench-sources")
        os.makedirs(folder, exist_ok=True)
        df = _frame()
        df.to_parquet(os.path.join(folder, "in.parquet"))
        csv = df.assign(t=df["t"].dt.tz_localize(None).dt.strftime("%Y-%m-%dT%H:%M:%S"))
        csv.to_csv(os.path.join(folder, "in.csv"), index=False)
        return folder

    def setup(self, folder, kind):
        self.path = os.path.join(folder, f"in.{kind}")
        self.out = tempfile.mkdtemp(prefix="bench-sources-out-")

    def teardown(self, folder, kind):
        shutil.rmtree(self.out, ignore_errors=True)

    def time_plain_pyarrow(self, folder, kind):
        pyarrow_copy(kind, self.path, os.path.join(self.out, f"plain.{kind}"), streaming=True)

    def time_plain_pyarrow_whole_file(self, folder, kind):
        pyarrow_copy(kind, self.path, os.path.join(self.out, f"plain.{kind}"), streaming=False)

    def time_read(self, folder, kind):
        from storey import build_flow

        assert build_flow([_source(kind, self.path), _counter()]).run().await_termination() == N

    def peakmem_read(self, folder, kind):
        self.time_read(folder, kind)

    def time_passthrough(self, folder, kind):
        from storey import build_flow

        build_flow([_source(kind, self.path), _target(kind, self.out)]).run().await_termination()

    def track_passthrough_vs_pyarrow_streaming(self, folder, kind):
        return speed_ratio(
            lambda: self.time_plain_pyarrow(folder, kind), lambda: self.time_passthrough(folder, kind)
        )

    track_passthrough_vs_pyarrow_streaming.unit = RATIO_UNIT

    def track_passthrough_vs_pyarrow_whole_file(self, folder, kind):
        return speed_ratio(
            lambda: self.time_plain_pyarrow_whole_file(folder, kind),
            lambda: self.time_passthrough(folder, kind),
        )

    track_passthrough_vs_pyarrow_whole_file.unit = RATIO_UNIT

    def time_map_filter(self, folder, kind):
        from storey import Filter, Map, build_flow

        build_flow(
            [
                _source(kind, self.path),
                Map(lambda b: {**b, "x": b["v"] * 2}),
                Filter(lambda b: b["v"] % 2 == 0),
                _target(kind, self.out),
            ]
        ).run().await_termination()


class DataframeRead:
    timeout = 300

    def setup(self):
        self.df = _frame()

    def time_read(self):
        from storey import DataframeSource, build_flow

        flow = build_flow([DataframeSource(self.df, key_field="k", time_field="t"), _counter()])
        assert flow.run().await_termination() == N
