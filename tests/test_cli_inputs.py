"""What `storey backfill SOURCE` reads: files, directories, globs, URLs; formats, columns, totals."""

import os

import fsspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from storey.cli.inputs import InputError, resolve_input


def _table(n, start=0):
    return pa.table({"k": [f"k{i % 3}" for i in range(start, start + n)], "v": list(range(start, start + n))})


def test_one_parquet_file_rows_from_metadata(tmp_path):
    path = str(tmp_path / "a.parquet")
    pq.write_table(_table(1234), path, row_group_size=100)
    inp = resolve_input(path)
    assert (inp.format, inp.paths, inp.columns, inp.total_rows) == ("parquet", [path], ["k", "v"], 1234)
    assert inp.source_arg == path


def test_glob_lists_files_in_name_order(tmp_path):
    for name, n in [("b.parquet", 5), ("a.parquet", 7), ("c.txt", 1)]:
        pq.write_table(_table(n), str(tmp_path / name))
    inp = resolve_input(str(tmp_path / "*.parquet"))
    assert inp.paths == [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")]
    assert inp.source_arg == inp.paths
    assert inp.total_rows == 12


def test_directory_is_read_as_a_dataset_with_partition_columns(tmp_path):
    for day, n in [("2024-01-01", 3), ("2024-01-02", 4)]:
        os.makedirs(tmp_path / f"day={day}")
        pq.write_table(_table(n), str(tmp_path / f"day={day}" / "part.parquet"))
    (tmp_path / "_SUCCESS").write_text("")
    os.makedirs(tmp_path / ".hidden")
    (tmp_path / ".hidden" / "junk.parquet").write_text("not parquet")
    inp = resolve_input(str(tmp_path))
    assert inp.format == "parquet"
    assert inp.paths == [str(tmp_path)]
    assert inp.columns == ["k", "v", "day"]
    assert inp.total_rows == 7


def test_fsspec_url(tmp_path):
    fs = fsspec.filesystem("memory")
    with fs.open("/cli-inputs/x.parquet", "wb") as f:
        pq.write_table(_table(9), f)
    try:
        inp = resolve_input("memory://cli-inputs/x.parquet")
        assert (inp.format, inp.total_rows) == ("parquet", 9)
        assert inp.paths == ["memory://cli-inputs/x.parquet"]
    finally:
        fs.rm("/cli-inputs", recursive=True)


def test_csv_header_and_estimated_rows(tmp_path):
    path = str(tmp_path / "a.csv")
    pacsv.write_csv(_table(5000), path)
    inp = resolve_input(path)
    assert (inp.format, inp.columns) == ("csv", ["k", "v"])
    assert inp.total_bytes == os.path.getsize(path)
    assert 4000 <= inp.total_rows <= 6000


def test_format_option_overrides_file_names(tmp_path):
    path = str(tmp_path / "data.bin")
    pq.write_table(_table(3), path)
    with pytest.raises(InputError, match="cannot tell the format.*pass --format"):
        resolve_input(path)
    assert resolve_input(path, "parquet").total_rows == 3


def test_mixed_formats_need_format_option(tmp_path):
    pq.write_table(_table(3), str(tmp_path / "a.parquet"))
    pacsv.write_csv(_table(3), str(tmp_path / "b.csv"))
    with pytest.raises(InputError, match="both Parquet and CSV"):
        resolve_input(str(tmp_path / "*"))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: str(d / "missing.parquet"), "no such file or directory"),
        (lambda d: str(d / "*.parquet"), "no file matches"),
        (lambda d: str(d), "is an empty directory"),
    ],
)
def test_nothing_to_read(tmp_path, make, message):
    with pytest.raises(InputError, match=message):
        resolve_input(make(tmp_path))


def test_unreadable_parquet_names_the_file(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_text("this is not parquet")
    with pytest.raises(InputError) as info:
        resolve_input(str(path))
    assert "cannot read" in str(info.value) and "bad.parquet" in str(info.value)


def test_empty_csv_needs_a_header(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(InputError, match="needs a header line"):
        resolve_input(str(path))


def test_binary_csv_is_not_text(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00\x01" * 10)
    with pytest.raises(InputError, match="not UTF-8"):
        resolve_input(str(path))


def test_unknown_column_suggests_a_close_one(tmp_path):
    path = str(tmp_path / "a.parquet")
    pq.write_table(pa.table({"amount": [1.0], "user": ["u"]}), path)
    inp = resolve_input(path)
    inp.check_columns(["amount", "user"], "--key")
    with pytest.raises(InputError) as info:
        inp.check_columns(["amout"], "--features")
    message = str(info.value)
    assert message.startswith("--features: no column 'amout'")
    assert "did you mean 'amount'" in message and "amount, user" in message


def test_csv_columns_are_read_as_the_csv_source_reads_them(tmp_path):
    # a UTF-8 byte order mark, and lines ending in CR alone
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfuser,ts,amount\nann,2024-01-01T00:00:00,1.5\n")
    assert resolve_input(str(bom)).columns == ["user", "ts", "amount"]
    cr = tmp_path / "cr.csv"
    cr.write_bytes(b"user,ts,amount\rann,2024-01-01T00:00:00,1.5\rbob,2024-01-01T00:01:00,2\r")
    inp = resolve_input(str(cr))
    assert inp.columns == ["user", "ts", "amount"] and inp.total_rows >= 1


def test_csv_text_that_is_not_utf8_names_the_file_row_and_column(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"user,cat\nann,grocery\nbob,\xe9picerie\n")
    with pytest.raises(InputError) as info:
        resolve_input(str(path))
    message = str(info.value)
    assert str(path) in message and "row 2" in message and "'cat'" in message and "not UTF-8" in message
