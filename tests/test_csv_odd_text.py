"""CSVSource on text that is odd but readable, or not CSV text at all: read as written, or refused
naming the file (and the row and field where they are known), never read as something else."""

import pytest

from storey import CSVSource, Reduce, build_flow


def read(path, **kwargs):
    source = CSVSource(str(path), header=True, build_dict=True, **kwargs)
    return build_flow([source, Reduce([], lambda acc, body: [*acc, body])]).run().await_termination()


@pytest.mark.parametrize("empty_lines", ["\n", "\n\n", "\r\n\r\n", "\r"])
def test_a_header_after_empty_lines_is_the_header(tmp_path, empty_lines):
    path = tmp_path / "lead.csv"
    path.write_bytes(f"{empty_lines}user,cat\nann,x\n".encode())
    assert read(path) == [{"user": "ann", "cat": "x"}]


@pytest.mark.parametrize("rows_before", [1, 150_000])
def test_text_that_is_not_utf8_is_a_unicode_error_naming_file_row_and_field(tmp_path, rows_before):
    # in the first block read, where pyarrow would read the column as bytes, or much later
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"user,cat\n" + b"ann,grocery\n" * rows_before + b"bob,\xe9picerie\n")
    with pytest.raises(UnicodeDecodeError, match=rf"CSVSource: {path}, row {rows_before + 1} .*field 'cat'"):
        read(path)


def test_a_header_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"us\xe9r,cat\nann,x\n")
    with pytest.raises(UnicodeDecodeError, match=rf"CSVSource: {path}, header line"):
        read(path)


@pytest.mark.parametrize(
    "data, message",
    [
        (b'"user,cat\nann,x\nbob,y\n', "never ends"),  # a quote never closed
        (b"\xff\xfe\x00\x01" * 10, "can't decode"),
        (b"user\x00cat", "NUL byte"),
    ],
)
def test_a_file_with_text_but_no_row_is_refused(tmp_path, data, message):
    path = tmp_path / "odd.csv"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message) as raised:
        read(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("data", [b"", b"\n\n", b"\xef\xbb\xbf", b"user,cat"])
def test_a_file_without_rows_gives_no_event(tmp_path, data):
    path = tmp_path / "empty.csv"
    path.write_bytes(data)
    assert read(path) == []


def test_a_header_after_empty_lines_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"\n\xf4ser,cat\nann,x\n")
    with pytest.raises(UnicodeDecodeError, match=rf"CSVSource: {path}, header line"):
        read(path)
