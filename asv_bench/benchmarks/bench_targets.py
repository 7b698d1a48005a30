"""CSVTarget and ParquetTarget on 1M rows: passthrough (no user function: columns all the way)
and with Map + Filter in the middle (rows built for the user functions), next to a plain pyarrow
read + write of the same file, the floor a passthrough flow is measured against.

`*FromBatches` feed the targets ready-made columnar batches (as a file source hands them on), so
they time the targets alone; `FileToFile` runs whole flows from the file sources, and tracks the
passthrough's speed relative to pyarrow's (>= 0.9 is the issue's target), measured alternately
in the same process.
"""

import os
import shutil
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .bench_sources import RATIO_UNIT, pyarrow_copy, speed_ratio

N = 1_000_000
BATCH = 65536


def _table(n=N):
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2020-01-01", tz="UTC").value
    times = start + np.sort(rng.integers(0, 30 * 86400 * 10**9, n))
    return pa.table(
        {
            "key": pa.array(np.array([f"k{i}" for i in range(100)], dtype=object)[rng.integers(0, 100, n)]),
            "time": pa.array(times, pa.timestamp("ns", tz="UTC")),
            "v": rng.integers(0, 1000, n),
            "f": rng.standard_normal(n),
            "name": pa.array(np.array(["x", "y", "z"], dtype=object)[rng.integers(0, 3, n)]),
        }
    )


def _batches(table):
    """The table as columnar EventBatches, keyed and timed by its 'key' and 'time' columns."""
    from storey.core.batch import EventBatch
    from storey.core.columns import Columns
    from storey.core.times import UTC_DATETIME

    out = []
    for rb in table.to_batches(BATCH):
        n = rb.num_rows
        data = {name: rb.column(name).to_numpy(zero_copy_only=False) for name in ("v", "f", "name")}
        out.append(
            EventBatch(
                n,
                columns=Columns(data, n),
                keys=rb.column("key").to_pylist(),
                times=rb.column("time").cast(pa.int64()).to_numpy(),
                time_style=UTC_DATETIME,
            )
        )
    return out


def _run_batches(steps, batches):
    import asyncio

    from storey.engine.runtime import FlowRuntime
    from storey.flow import Flow, build_flow

    class Entry(Flow):
        _legal_first_step = True

    entry = Entry()
    build_flow([entry, *steps])

    async def main():
        runtime = FlowRuntime(entry)
        runtime._bind_loop()
        try:
            for batch in batches:
                await runtime.run_batch(batch.shallow_copy())
            return await entry._terminate()
        finally:
            for step in runtime.steps:
                step._close()

    return asyncio.run(main())


def _target(kind, out_dir, columns=("key=$key", "time=$time", "v", "f", "name")):
    from storey.targets import CSVTarget, ParquetTarget

    if kind == "parquet":
        return ParquetTarget(os.path.join(out_dir, "out.parquet"), columns=list(columns))
    return CSVTarget(os.path.join(out_dir, "out.csv"), columns=list(columns), header=True)


class TargetsFromBatches:
    """The targets alone, fed the columnar batches a file source produces."""

    params = ["parquet", "csv"]
    param_names = ["target"]
    timeout = 300

    def setup(self, kind):
        self.batches = _batches(_table())
        self.out = tempfile.mkdtemp()

    def teardown(self, kind):
        shutil.rmtree(self.out, ignore_errors=True)

    def time_passthrough(self, kind):
        _run_batches([_target(kind, self.out)], self.batches)

    def time_map_filter(self, kind):
        from storey import Filter, Map

        _run_batches([Map(lambda x: x), Filter(lambda x: True), _target(kind, self.out)], self.batches)


class FileToFile:
    """Whole flows: ParquetSource -> ParquetTarget and CSVSource -> CSVTarget, with and without
    Map + Filter, and the plain pyarrow read + write of the same file."""

    params = ["parquet", "csv"]
    param_names = ["format"]
    timeout = 600

    def setup(self, kind):
        import storey

        try:
            self.source_class = storey.ParquetSource if kind == "parquet" else storey.CSVSource
        except AttributeError as ex:
            raise NotImplementedError("file sources not available") from ex
        self.tmp = tempfile.mkdtemp()
        table = _table()
        if kind == "parquet":
            self.path = os.path.join(self.tmp, "in.parquet")
            pq.write_table(table, self.path)
        else:
            self.path = os.path.join(self.tmp, "in.csv")
            table.to_pandas().to_csv(self.path, index=False)

    def teardown(self, kind):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _target(self, kind):
        # CSVSource hands rows on as lists: a list body is written as is
        columns = (
            ("key", "time", "v", "f", "name")
            if kind == "csv"
            else ("key=$key", "time=$time", "v", "f", "name")
        )
        return _target(kind, self.tmp, columns)

    def _source(self, kind):
        if kind == "parquet":
            return self.source_class(self.path, key_field="key", time_field="time")
        return self.source_class(
            self.path, header=True, key_field="key", time_field="time", parse_dates=["time"]
        )

    def time_pyarrow_read_write(self, kind):
        pyarrow_copy(kind, self.path, os.path.join(self.tmp, f"copy.{kind}"), streaming=False)

    def time_pyarrow_streaming(self, kind):
        pyarrow_copy(kind, self.path, os.path.join(self.tmp, f"copy.{kind}"), streaming=True)

    def time_passthrough(self, kind):
        from storey import build_flow

        build_flow([self._source(kind), self._target(kind)]).run().await_termination()

    def track_passthrough_vs_pyarrow_whole_file(self, kind):
        return speed_ratio(lambda: self.time_pyarrow_read_write(kind), lambda: self.time_passthrough(kind))

    track_passthrough_vs_pyarrow_whole_file.unit = RATIO_UNIT

    def track_passthrough_vs_pyarrow_streaming(self, kind):
        return speed_ratio(lambda: self.time_pyarrow_streaming(kind), lambda: self.time_passthrough(kind))

    track_passthrough_vs_pyarrow_streaming.unit = RATIO_UNIT

    def time_map_filter(self, kind):
        from storey import Filter, Map, build_flow

        steps = [self._source(kind), Map(lambda x: x), Filter(lambda x: True), self._target(kind)]
        build_flow(steps).run().await_termination()
