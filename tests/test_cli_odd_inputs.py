"""`storey backfill` on valid but less usual input reads what the library reads, and refuses what
it cannot read with one line naming the file (and the row and column where they are known)."""

import datetime as dt
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storey.cli import main

T0 = dt.datetime(2024, 1, 1)
FEATURES = ["--features", "amount:sum,count@1h"]


def backfill(source, out, *extra):
    return main(
        ["backfill", str(source), "--key", "user", "--time", "ts", *FEATURES, "--out", str(out), *extra]
    )


def csv_text(rows, line_end="\n"):
    lines = ["user,ts,amount"] + [f"{u},{t.isoformat()},{a}" for u, t, a in rows]
    return line_end.join(lines) + line_end


ROWS = [
    ("ann", T0, 1.5),
    ("bob", T0 + dt.timedelta(minutes=1), 2.0),
    ("ann", T0 + dt.timedelta(minutes=2), 4.0),
]


@pytest.mark.parametrize(
    "encoded",
    [
        lambda text: b"\xef\xbb\xbf" + text.encode(),  # a UTF-8 byte order mark
        lambda text: text.replace("\n", "\r").encode(),  # lines ending in CR alone
        lambda text: text.replace("\n", "\r\n").encode(),
    ],
)
def test_csv_the_library_reads_is_read_alike(tmp_path, encoded, capsys):
    plain = tmp_path / "plain.csv"
    plain.write_text(csv_text(ROWS))
    odd = tmp_path / "odd.csv"
    odd.write_bytes(encoded(csv_text(ROWS)))
    assert backfill(plain, tmp_path / "plain.parquet", "-q") == 0
    assert backfill(odd, tmp_path / "odd.parquet", "-q") == 0
    assert capsys.readouterr().err == ""
    expected = pq.read_table(tmp_path / "plain.parquet")
    assert expected.column("amount_sum_1h").to_pylist() == [1.5, 2.0, 5.5]
    assert pq.read_table(tmp_path / "odd.parquet").equals(expected)


@pytest.mark.parametrize("rows_before", [40_000, 200_000])
def test_csv_text_that_is_not_utf8_anywhere_fails_naming_file_row_and_column(tmp_path, rows_before, capsys):
    # a bad byte within the first MiB read up front, or megabytes later, read by the flow
    source = tmp_path / "latin1.csv"
    line = f"ann,{T0.isoformat()},grocery,1.5\n".encode()
    source.write_bytes(
        b"user,ts,cat,amount\n" + line * rows_before + b"bob,2024-01-01T00:00:00,\xe9picerie,2\n"
    )
    out = tmp_path / "out.parquet"
    assert backfill(source, out) in (1, 2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "not UTF-8" in err or "can't decode" in err
    assert str(source) in err and f"row {rows_before + 1}" in err and "'cat'" in err
    assert not out.exists()


def epoch_file(path, times):
    pq.write_table(pa.table({"user": ["ann", "ann"], "ts": times, "amount": [1.0, 2.0]}), path)


def test_epoch_milliseconds_are_refused_unless_time_unit_says_so(tmp_path, capsys):
    millis = tmp_path / "millis.parquet"
    epoch_file(millis, [1704067200000, 1704067260000])
    out = tmp_path / "out.parquet"
    assert backfill(millis, out) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(millis) in err and "out of range" in err and "--time-unit" in err
    assert not out.exists()
    assert backfill(millis, out, "--time-unit", "ms", "-q") == 0
    stamped = tmp_path / "stamped.parquet"
    epoch_file(stamped, pa.array([T0, T0 + dt.timedelta(minutes=1)], pa.timestamp("ms")))
    assert backfill(stamped, tmp_path / "expected.parquet", "-q") == 0
    written = pq.read_table(out)
    expected = pq.read_table(tmp_path / "expected.parquet")
    assert (
        written.column("amount_sum_1h").to_pylist()
        == expected.column("amount_sum_1h").to_pylist()
        == [1.0, 3.0]
    )


def test_time_unit_and_time_format_exclude_each_other(tmp_path, capsys):
    source = tmp_path / "e.csv"
    source.write_text(csv_text(ROWS))
    assert backfill(source, tmp_path / "o.parquet", "--time-unit", "ms", "--time-format", "%Y") == 2
    assert "exclude each other" in capsys.readouterr().err


def test_rows_without_a_key_are_counted(tmp_path, capsys):
    source = tmp_path / "keys.parquet"
    times = pa.array([T0] * 400, pa.timestamp("us"))
    pq.write_table(pa.table({"user": pa.nulls(400, pa.string()), "ts": times, "amount": [1.0] * 400}), source)
    out = tmp_path / "out.parquet"
    assert backfill(source, out) == 0
    captured = capsys.readouterr()
    assert captured.err == "storey backfill: 400 rows without a --key (user) left out\n"
    assert "no row has a --key (user): nothing written" in captured.out
    assert not out.exists()
    pq.write_table(pa.table({"user": ["a", None, "b"], "ts": times[:3], "amount": [1.0] * 3}), source)
    assert backfill(source, out, "-q") == 0
    assert capsys.readouterr().err == "storey backfill: 1 row without a --key (user) left out\n"
    assert pq.read_table(out).column("user").to_pylist() == ["a", "b"]


def test_features_of_a_text_column_are_refused_before_the_run(tmp_path, capsys):
    source = tmp_path / "text.parquet"
    times = pa.array([T0, T0], pa.timestamp("us"))
    pq.write_table(pa.table({"user": ["a", "b"], "ts": times, "amount": ["1.5", "2"]}), source)
    assert backfill(source, tmp_path / "out.parquet") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"column 'amount' of {source} holds string values, not numbers" in err
    assert os.listdir(tmp_path) == ["text.parquet"]


def test_column_names_with_line_breaks_keep_errors_on_one_line(tmp_path, capsys):
    source = tmp_path / "odd.csv"
    source.write_text('"us\ner",ts,amount\nann,2024-01-01T00:00:00,1\n')
    assert backfill(source, tmp_path / "out.parquet") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no column 'user'" in err and str(source) in err
