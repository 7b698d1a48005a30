"""CSV lines as the reference writes them: Python's csv conventions with '\\n' line ends.

A cell is quoted when it holds ',', '"' or a line feed, with '"' doubled; a line with a single
empty cell is written '""'. Row bodies are formatted cell by cell; column bodies column by
column (cell texts from `csv_cells`), their lines joined by arrow's CSV writer when no cell
needs quotes.
"""

import csv
import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

# What arrow's CSV writer cannot write unquoted ('\r' is not quoted by Python's csv writer with
# '\n' line ends, but arrow refuses it: such cells take the other way)
_SPECIAL_BYTES = (b",", b'"', b"\n", b"\r")
_UNQUOTED = pacsv.WriteOptions(include_header=False, quoting_style="none")


# ---- row bodies
def cell_text(value):
    text = value if type(value) is str else ("" if value is None else str(value))
    if '"' in text:
        return '"' + text.replace('"', '""') + '"'
    if "," in text or "\n" in text:
        return '"' + text + '"'
    return text


def line_text(values):
    """One CSV line (with its '\\n') of a list of cell values."""
    if len(values) == 1 and (values[0] is None or values[0] == ""):
        return '""\n'
    return ",".join([cell_text(v) for v in values]) + "\n"


def text_of_rows(rows):
    """CSV text of many lines (lists of cell values) at once, through Python's csv writer."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


class Lines:
    """CSV lines of some events: a list of strings or an arrow string array (one per event), or
    the text or UTF-8 bytes of all of them (`n` lines; cannot be split)."""

    __slots__ = ("lines", "n")

    def __init__(self, lines, n=None):
        self.lines = lines
        self.n = len(lines) if n is None else n

    def __len__(self):
        return self.n

    def take(self, positions):
        if isinstance(self.lines, list):
            lines = self.lines
            return Lines([lines[i] for i in positions.tolist()])
        return Lines(self.lines.take(pa.array(positions)))

    def payload(self):
        """The lines as UTF-8 bytes (a bytes-like object)."""
        lines = self.lines
        if isinstance(lines, str):
            return lines.encode("utf-8")
        if isinstance(lines, list):
            return "".join(lines).encode("utf-8")
        if isinstance(lines, bytes | pa.Buffer):
            return lines
        if len(lines) == 0:
            return b""
        data = _data_bytes(lines)
        return data if data is not None else b""


# ---- column bodies
def _data_bytes(text):
    """The bytes of all values of an arrow string array, one after the other (a memoryview)."""
    if text.type != pa.large_string():
        offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)
    else:
        offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)
    offsets = offsets[text.offset : text.offset + len(text) + 1]
    data = text.buffers()[2]
    if data is None:
        return None
    return memoryview(data)[int(offsets[0]) : int(offsets[-1])]


def _is_plain(text):
    """Whether no cell holds a character that needs quotes (or that arrow will not write)."""
    if len(text) == 0:
        return True
    data = _data_bytes(text)
    if data is None:
        return True
    data = bytes(data)
    return not any(c in data for c in _SPECIAL_BYTES)


def quoted(text):
    """Cell texts quoted where needed; nulls become empty cells."""
    text = pc.fill_null(text, "") if text.null_count else text
    if _is_plain(text):
        return text
    needs = pc.match_substring_regex(text, '[,"\n]')
    if not pc.any(needs).as_py():
        return text
    escaped = pc.binary_join_element_wise("", pc.replace_substring(text, '"', '""'), "", '"')
    return pc.if_else(needs, escaped, text)


def join_lines(cells, n):
    """CSV lines (with '\\n') from quoted cell texts, one array per column."""
    if not cells:
        return pa.array(["\n"] * n, pa.string())
    if len(cells) == 1:
        only = pc.if_else(pc.equal(cells[0], ""), '""', cells[0])
        return pc.binary_join_element_wise(only, "", "\n")
    return pc.binary_join_element_wise(pc.binary_join_element_wise(*cells, ","), "", "\n")


def lines_of_cells(texts, n, splittable):
    """`Lines` of n events from the (unquoted) cell texts of each column: the lines as one
    block of bytes written by arrow's CSV writer when no cell needs quotes, else an arrow
    array of lines (always one when `splittable`, so that lines can be taken apart)."""
    if not splittable and texts and all(_is_plain(t) for t in texts):
        if len(texts) > 1 or not _has_empty(texts[0]):
            names = [f"c{i}" for i in range(len(texts))]
            sink = pa.BufferOutputStream()
            pacsv.write_csv(pa.RecordBatch.from_arrays(texts, names=names), sink, _UNQUOTED)
            return Lines(sink.getvalue(), n)
    return Lines(join_lines([quoted(t) for t in texts], n))


def _has_empty(text):
    return bool(text.null_count) or pc.any(pc.equal(pc.binary_length(text), 0)).as_py() is True
