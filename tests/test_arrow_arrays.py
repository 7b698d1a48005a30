"""Arrow arrays to NumPy and back through their buffers: what pyarrow's own conversions give."""

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from storey.core.arrow_arrays import from_numpy, text_array, to_numpy

NUMERIC = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"]


def _same(got, expected):
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    assert np.array_equal(got, expected, equal_nan=got.dtype.kind in "fmM")


def _same_arrow(got, expected):
    """Equal arrays, NaN equal to NaN (arrow's `equals` says NaN != NaN)."""
    got.validate(full=True)
    assert got.type == expected.type

    def values(arr):
        return [("NaN" if isinstance(v, float) and v != v else v) for v in arr.to_pylist()]

    assert values(got) == values(expected)


@st.composite
def arrow_arrays(draw):
    """An arrow array of a kind a Parquet file holds, maybe with nulls, maybe a slice."""
    kind = draw(st.sampled_from(NUMERIC + ["bool", "string", "large_string", "timestamp"]))
    n = draw(st.integers(0, 40))
    if kind in ("string", "large_string"):
        values = draw(st.lists(st.text(max_size=5), min_size=n, max_size=n))
        typ = pa.string() if kind == "string" else pa.large_string()
    elif kind == "bool":
        values, typ = draw(st.lists(st.booleans(), min_size=n, max_size=n)), pa.bool_()
    elif kind == "timestamp":
        values = draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n))
        typ = pa.timestamp("ns", tz="UTC")
    else:
        info = np.finfo(kind) if kind.startswith("float") else np.iinfo(kind)
        if kind.startswith("float"):
            element = st.floats(width=info.bits, allow_nan=True)
        else:
            element = st.integers(int(info.min), int(info.max))
        values, typ = draw(st.lists(element, min_size=n, max_size=n)), pa.from_numpy_dtype(np.dtype(kind))
    if draw(st.booleans()):
        values = [None if draw(st.booleans()) else v for v in values]
    arr = pa.array(values, typ)
    start = draw(st.integers(0, n))
    return arr.slice(start, draw(st.integers(0, n - start))) if draw(st.booleans()) else arr


@settings(max_examples=400, deadline=None)
@given(arrow_arrays())
def test_to_numpy_gives_what_pyarrow_gives(arr):
    expected = arr.to_numpy(zero_copy_only=False)
    got = to_numpy(arr)
    if expected.dtype == object:
        assert got.dtype == object and got.tolist() == expected.tolist()
    else:
        _same(got, expected)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(NUMERIC + ["bool"]),
    st.integers(0, 40),
    st.data(),
)
def test_from_numpy_gives_what_pyarrow_gives(dtype, n, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32)))
    if dtype == "bool":
        values = rng.integers(0, 2, n).astype(bool)
    elif dtype.startswith("float"):
        values = rng.normal(size=n).astype(dtype)
        values[rng.random(n) < 0.2] = np.nan
    else:
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    if data.draw(st.booleans()):
        values = values[:: data.draw(st.integers(1, 3))]  # not contiguous
    mask = None
    if data.draw(st.booleans()):
        mask = rng.random(len(values)) < 0.3
    _same_arrow(from_numpy(values, mask=mask), pa.array(values, mask=mask))


def test_from_numpy_types_int64_as_timestamps_and_converts_other_values():
    ns = np.array([0, 1_700_000_000_123_456_789, -5], dtype=np.int64)
    typ = pa.timestamp("ns", tz="UTC")
    mask = np.array([False, False, True])
    assert from_numpy(ns, typ, mask).equals(pa.array(ns, typ, mask=mask))
    assert from_numpy(ns, pa.duration("us")).equals(pa.array(ns, pa.duration("us")))
    floats = np.array([1.0, 2.0, np.nan])
    for typ in (pa.int64(), pa.float32()):
        assert from_numpy(floats, typ, mask).equals(pa.array(floats, typ, mask=mask))


@given(st.lists(st.text()), st.sampled_from([pa.string(), pa.large_string()]))
def test_text_array_gives_what_pyarrow_gives(strings, typ):
    got = text_array(strings, typ)
    got.validate(full=True)
    assert got.equals(pa.array(strings, typ))


def test_a_parquet_backfill_never_imports_pandas(tmp_path):
    """pandas' import is 0.3 s of a backfill's start-up: a Parquet -> AggregateByKey -> Parquet
    flow, and the `storey backfill` command on a file, build no DataFrame and do not load it."""
    n = 5000
    rng = np.random.default_rng(1)
    times = pa.array(
        1_700_000_000_000_000_000 + np.sort(rng.integers(0, 10**13, n)), pa.timestamp("ns", tz="UTC")
    )
    users = pa.array([f"u{i}" for i in rng.integers(0, 50, n)])
    pq.write_table(
        pa.table({"user": users, "time": times, "amount": rng.normal(size=n)}), tmp_path / "in.parquet"
    )
    script = f"""
import sys
from storey import AggregateByKey, NoopDriver, ParquetSource, ParquetTarget, Table, build_flow
from storey.dtypes import FieldAggregator, SlidingWindows

windows = SlidingWindows(["1h", "6h"], "10m")
build_flow([
    ParquetSource({str(tmp_path / "in.parquet")!r}, key_field="user", time_field="time"),
    AggregateByKey(
        [FieldAggregator("amount", "amount", ["sum", "avg", "max"], windows)], Table("t", NoopDriver())
    ),
    ParquetTarget({str(tmp_path / "script.parquet")!r}),
]).run().await_termination()
print(sorted(m for m in sys.modules if m.split(".")[0] == "pandas"))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    command = f"""
import sys, runpy
sys.argv = ["storey", "backfill", {str(tmp_path / "in.parquet")!r}, "--key", "user", "--time", "time",
            "--features", "amount:sum,avg@1h/10m", "--out", {str(tmp_path / "cli.parquet")!r}, "--quiet"]
try:
    runpy.run_module("storey", run_name="__main__")
except SystemExit as ex:
    assert not ex.code, ex.code
print(sorted(m for m in sys.modules if m.split(".")[0] == "pandas"))
"""
    result = subprocess.run([sys.executable, "-c", command], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    written = pq.read_table(tmp_path / "script.parquet")
    assert written.num_rows == n and "amount_avg_6h" in written.column_names
    assert pq.read_table(tmp_path / "cli.parquet").num_rows == n
