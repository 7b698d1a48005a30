"""Random corruptions of small Parquet and CSV files, read by a source and by `storey backfill`.

Every run either succeeds with exactly the rows an independent pyarrow read of the file gives
(rows without a key left out, as documented), or fails with one line naming the file; no run
hangs, and a failed one leaves no output under its final name and no temporaries.
"""

import contextlib
import datetime as dt
import io
import math
import os
import threading

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storey import CSVSource, ParquetSource, Reduce, build_flow
from storey.cli import main

T0 = dt.datetime(2024, 1, 1)
ROWS = 24
# a run that takes longer than this is taken for a hang
HANG_SECONDS = 60
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def clean_table():
    return pa.table(
        {
            "user": [f"u{i % 5}" for i in range(ROWS)],
            "ts": pa.array([T0 + dt.timedelta(minutes=7 * i) for i in range(ROWS)], pa.timestamp("us")),
            "amount": [round(1.25 * i, 2) for i in range(ROWS)],
            "category": [["food", "travel", "rent"][i % 3] for i in range(ROWS)],
        }
    )


def clean_bytes(fmt):
    table = clean_table()
    out = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, out, row_group_size=7, compression="none")
    else:
        lines = ["user,ts,amount,category"]
        for row in table.to_pylist():
            lines.append(f"{row['user']},{row['ts'].isoformat()},{row['amount']},{row['category']}")
        out.write(("\n".join(lines) + "\n").encode())
    return out.getvalue()


ODD_BYTES = [b"\n", b"\r", b",", b'"', b"\x00", b"\xff", b"\xe9", b"-", b"9", b" ", b"\xef\xbb\xbf"]


@st.composite
def corruptions(draw):
    """A list of edits (kind, position as a fraction of the length, argument)."""
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "odd"]))
        where = draw(st.floats(0, 1, exclude_max=True))
        if kind == "flip":
            arg = draw(st.integers(1, 255))
        elif kind == "insert":
            arg = draw(st.binary(min_size=1, max_size=6))
        elif kind == "delete":
            arg = draw(st.integers(1, 40))
        elif kind == "odd":
            arg = draw(st.sampled_from(ODD_BYTES))
        else:
            arg = None
        edits.append((kind, where, arg))
    return edits


def corrupt(data, edits):
    data = bytearray(data)
    for kind, where, arg in edits:
        at = int(where * len(data)) if data else 0
        if kind == "flip" and data:
            data[at] ^= arg
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = arg
        elif kind == "delete":
            del data[at : at + arg]
        elif kind == "odd" and data:
            data[at : at + 1] = arg
    return bytes(data)


# ---- what pyarrow reads
def pyarrow_rows(path, fmt):
    """The (user, time, amount) of each row with a user, read by pyarrow alone; None when pyarrow
    cannot read the file as this data."""
    try:
        if fmt == "parquet":
            table = pq.read_table(path)
        else:
            options = pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True)
            table = pacsv.read_csv(path, convert_options=options)
        columns = {name: table.column(name).to_pylist() for name in ("user", "ts")}
        names = table.column_names
        columns["amount"] = (
            table.column("amount").to_pylist() if "amount" in names else [NO_COLUMN] * len(table)
        )
    except pa.ArrowInvalid as ex:
        # pyarrow reads no row from a file of one line without a line end: a header alone
        with open(path, "rb") as f:
            text = f.read().strip(b" \t\r\n")
        one_line = b"\n" not in text and b"\r" not in text
        return [] if "Empty CSV file" in str(ex) and one_line else None
    except (pa.ArrowException, KeyError, ValueError, OverflowError, OSError):
        return None
    rows = []
    for user, ts, amount in zip(columns["user"], columns["ts"], columns["amount"], strict=True):
        if user is None:
            continue
        try:
            rows.append((user, instant(ts), number(amount)))
        except (TypeError, ValueError):
            return None
    return rows


# what a row holds for a column the file does not have (its name corrupted)
NO_COLUMN = "no such column"


def number(value):
    """An amount as read: a number, None for a missing one (null, NaN), or the text of a column
    that is not all numbers."""
    if value is None or isinstance(value, str):
        return value
    value = float(value)
    return None if math.isnan(value) else value


def instant(value):
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"not a time: {value!r}")
    return value if value.tzinfo is None else value.astimezone(dt.UTC).replace(tzinfo=None)


def written_rows(table):
    return [
        (r["user"], instant(r["ts"]), number(r["amount"]))
        for r in table.select(["user", "ts", "amount"]).to_pylist()
    ]


# ---- running with a watch for hangs
def finishes(fn):
    """fn()'s result or exception, run in a thread that must end within HANG_SECONDS."""
    outcome = {}

    def run():
        try:
            outcome["value"] = fn()
        except BaseException as ex:  # noqa: BLE001 - handed to the test
            outcome["error"] = ex

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_SECONDS)
    assert not thread.is_alive(), "the run hangs"
    return outcome


def full_message(ex):
    return " ".join([str(ex), *getattr(ex, "__notes__", ())])


def check_source_run(path, fmt, expected):
    if fmt == "parquet":
        source = ParquetSource(str(path), key_field="user", time_field="ts")
    else:
        source = CSVSource(str(path), header=True, build_dict=True, key_field="user", time_field="ts")
    outcome = finishes(
        lambda: build_flow([source, Reduce([], lambda a, b: [*a, b])]).run().await_termination()
    )
    if "error" in outcome:
        assert str(path) in full_message(outcome["error"]), repr(outcome["error"])
        return
    assert expected is not None, f"read where pyarrow cannot: {outcome['value'][:3]}"
    got = [(b["user"], instant(b["ts"]), number(b.get("amount", NO_COLUMN))) for b in outcome["value"]]
    assert got == expected


def check_backfill(path, out, expected):
    args = ["backfill", str(path), "--key", "user", "--time", "ts", "--features", "amount:sum,max@1h"]
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        outcome = finishes(lambda: main([*args, "--out", str(out), "--quiet"]))
    status = outcome.get("value", outcome.get("error"))
    message = errors.getvalue()
    leftovers = [name for name in os.listdir(out.parent) if name.startswith(".")]
    assert leftovers == []
    if status != 0:
        assert status in (1, 2), message
        assert message.count("\n") == 1 and str(path) in message, message
        assert not out.exists()
        return
    assert expected is not None, "written where pyarrow cannot read"
    if out.exists():
        assert written_rows(pq.read_table(out)) == expected
    else:
        assert expected == []


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@FUZZ
@given(edits=corruptions())
def test_corrupt_files_are_read_exactly_or_refused_naming_the_file(tmp_path_factory, fmt, edits):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / f"events.{fmt}"
    path.write_bytes(corrupt(clean_bytes(fmt), edits))
    expected = pyarrow_rows(str(path), fmt)
    check_source_run(path, fmt, expected)
    (folder / "out").mkdir()
    check_backfill(path, folder / "out" / "features.parquet", expected)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_the_clean_files_are_read_whole(tmp_path, fmt):
    path = tmp_path / f"events.{fmt}"
    path.write_bytes(clean_bytes(fmt))
    expected = pyarrow_rows(str(path), fmt)
    assert len(expected) == ROWS
    check_source_run(path, fmt, expected)
    (tmp_path / "out").mkdir()
    check_backfill(path, tmp_path / "out" / "features.parquet", expected)
    assert pq.read_metadata(tmp_path / "out" / "features.parquet").num_rows == ROWS
