"""CSV files as arrow record batches, typed as the reference types fields, with clear errors.

Each file is read twice at its start: once to learn its header and the column types pyarrow
infers from the first block (ints, floats, bools written `true`/`false` in any case, strings;
an empty field is a null), and once to stream it with those types fixed, so every later block
is converted the same way. Columns pyarrow would read as dates or timestamps stay text (the
reference only parses the time field and `parse_dates`). A column that is empty throughout the
first block takes its type from the first block where it has a value.

Errors name the file and the row: a row with the wrong number of fields, a value that does not
fit its column's type, text that is not UTF-8 (a UnicodeDecodeError, as the reference raises).
The row is found by scanning the file again with Python's csv module, which only happens on the
way to raising.
"""

import csv
import io
import itertools
import re

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ...core.storage import get_filesystem

# Types are inferred from the first block of this size; the file is then read in smaller
# blocks (as fast), so that the flow gets its first rows sooner, unless a column has no value in
# the first block (its type then comes from the first block, as large, where it has some).
BLOCK_BYTES = 1 << 22
READ_BLOCK_BYTES = 1 << 21
# bytes read to tell a file without rows from one that is not text
_SAMPLE_BYTES = 1 << 16


def _spellings(word):
    return ["".join(chars) for chars in itertools.product(*[(c.lower(), c.upper()) for c in word])]


TRUE_WORDS = _spellings("true")
FALSE_WORDS = _spellings("false")
_EMPTY_LINES = re.compile(rb"(?:\r\n|\n|\r)*")
_PARSE_ERROR = re.compile(r"CSV parse error: Expected (\d+) columns, got (\d+): (.*)", re.S)
_UTF8_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error to string: invalid UTF8 data")
# what the surrogateescape error handler makes of a byte that is not UTF-8
_SURROGATE = re.compile("[\udc80-\udcff]")
_CONVERSION_ERROR = re.compile(
    r"In CSV column #(\d+): .*?CSV conversion error to (\S+): invalid value '(.*)'", re.S
)


class CsvError(ValueError):
    """A CSV file whose content does not fit what was read before (names file, row and field);
    `row` is the data row's number (1-based) when known."""

    def __init__(self, message, row=None):
        super().__init__(message)
        self.row = row


class CsvFile:
    """One CSV file: its field names and its rows as record batches of typed arrow columns."""

    def __init__(self, path, storage_options, header, type_inference, step):
        self.path = path
        self.storage_options = storage_options
        self.header = header
        self.type_inference = type_inference
        self.step = step
        self.names = None
        self.rows_read = 0
        self._header_line_count = None

    # ---- opening
    def _source(self):
        fs, inner = get_filesystem(self.path, self.storage_options)
        if fs.isdir(inner):
            raise IsADirectoryError(21, f"{self.step}: {self.path} is a directory, not a CSV file", self.path)
        if not fs.exists(inner):
            raise FileNotFoundError(2, f"{self.step}: no such file: {self.path}", self.path)
        if "://" not in self.path:
            return inner
        return fs.open(inner, "rb", compression="infer")

    def _convert_options(self, column_types=None):
        if not self.type_inference and column_types is not None:
            return pacsv.ConvertOptions(column_types=column_types, strings_can_be_null=False)
        return pacsv.ConvertOptions(
            column_types=column_types,
            null_values=[""],
            true_values=TRUE_WORDS,
            false_values=FALSE_WORDS,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )

    def inferred_schema(self):
        """The schema pyarrow infers from the first block (None for an empty file); sets `names`."""

        def open_reader(parse_options):
            return pacsv.open_csv(
                self._source(),
                read_options=pacsv.ReadOptions(
                    block_size=BLOCK_BYTES, autogenerate_column_names=not self.header
                ),
                parse_options=parse_options,
                convert_options=self._convert_options(),
            )

        try:
            reader = open_reader(pacsv.ParseOptions())
        except pa.ArrowInvalid as ex:
            if "Empty CSV file" in str(ex):
                self._check_no_row()
                return None
            if "CSV parse error" not in str(ex):
                raise self._located(ex) from ex
            # a malformed row in the first block: the types come from the other rows, and the
            # row is reported when reading reaches it (after the rows before it). pyarrow hands
            # the rows it skips to Python as text: the block must be UTF-8 for it.
            self._check_first_block_text()
            try:
                reader = open_reader(pacsv.ParseOptions(invalid_row_handler=lambda _: "skip"))
            except pa.ArrowInvalid:
                raise self._located(ex) from ex
        schema = reader.schema
        reader.close()
        if self.header:
            try:
                self.names = schema.names
            except UnicodeDecodeError:
                self._check_header_text()
                raise
        for column, field in enumerate(schema):
            if pa.types.is_binary(field.type):
                # pyarrow reads a column with text that is not UTF-8 as bytes
                raise self._not_utf8(column)
        return schema

    # ---- reading
    def batches(self, schema, text_columns=()):
        """The file's rows as record batches whose columns are named c0, c1, ..., typed after the
        `inferred_schema()`; the columns at `text_columns` (indexes) are kept as text."""
        types = {}
        deferred = {}
        for i, field in enumerate(schema):
            typ = field.type
            if not self.type_inference or i in text_columns:
                typ = pa.string()
            elif pa.types.is_null(typ):
                typ = pa.string()
                deferred[i] = None
            elif pa.types.is_temporal(typ):
                typ = pa.string()
            types[f"c{i}"] = typ
        reader = None
        self._header_lines()
        try:
            while True:
                try:
                    if reader is None:
                        # opening reads the first block already
                        reader = pacsv.open_csv(
                            self._source(),
                            read_options=pacsv.ReadOptions(
                                # a column typed later is typed by a block as large as the first
                                block_size=BLOCK_BYTES if deferred else READ_BLOCK_BYTES,
                                column_names=list(types),
                                skip_rows=self._header_lines(),
                            ),
                            parse_options=pacsv.ParseOptions(),
                            convert_options=self._convert_options(types),
                        )
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as ex:
                    error = self._located(ex)
                    # the rows of the failing block before the bad one still go through the flow
                    before = self._rows_before(types, deferred, getattr(error, "row", None))
                    if before is not None and before.num_rows:
                        yield before
                    raise error from ex
                if deferred:
                    try:
                        batch = self._type_deferred(batch, deferred)
                    except CsvError as error:
                        if error.row is not None and error.row - 1 > self.rows_read:
                            yield self._type_deferred(
                                batch.slice(0, error.row - 1 - self.rows_read), deferred
                            )
                        raise
                yield batch
                self.rows_read += batch.num_rows
        finally:
            if reader is not None:
                reader.close()

    def _rows_before(self, types, deferred, row):
        """The rows of the block being read that come before data row `row`, typed as the
        others, or None when they cannot be read again."""
        if row is None or row - 1 <= self.rows_read:
            return None
        count = row - 1 - self.rows_read
        text_types = dict.fromkeys(types, pa.string())
        try:
            reader = pacsv.open_csv(
                self._source(),
                read_options=pacsv.ReadOptions(
                    block_size=READ_BLOCK_BYTES,
                    column_names=list(types),
                    skip_rows=self._header_lines(),
                    skip_rows_after_names=self.rows_read,
                ),
                parse_options=pacsv.ParseOptions(invalid_row_handler=lambda _: "skip"),
                convert_options=self._convert_options(text_types),
            )
            parts = []
            got = 0
            for part in reader:
                parts.append(part.slice(0, count - got))
                got += parts[-1].num_rows
                if got >= count:
                    break
            reader.close()
            strings = pa.Table.from_batches(parts).combine_chunks()
            columns = []
            for i, (name, typ) in enumerate(types.items()):
                column = strings.column(name).combine_chunks()
                if i in deferred:
                    typ = deferred[i]
                if typ is not None and not pa.types.is_string(typ):
                    column = self._convert(column, typ, i)
                columns.append(column)
            return pa.RecordBatch.from_arrays(columns, names=list(types))
        except (pa.ArrowException, CsvError, OSError):
            return None

    def _type_deferred(self, batch, deferred):
        columns = batch.columns
        for i, typ in deferred.items():
            strings = columns[i]
            if typ is None:
                if strings.null_count == len(strings):
                    continue
                typ = deferred[i] = _infer_type(strings.drop_null())
            columns[i] = self._convert(strings, typ, i)
        return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)

    def _convert(self, strings, typ, column):
        if pa.types.is_string(typ):
            return strings
        if pa.types.is_boolean(typ):
            lower = pc.utf8_lower(strings)
            is_true = pc.equal(lower, "true")
            bad = pc.and_(pc.invert(is_true), pc.not_equal(lower, "false"))
            if pc.any(bad).as_py():
                self._raise_bad_value(strings, column, typ, bad.to_pylist().index(True))
            return is_true
        try:
            return pc.cast(strings, typ)
        except pa.ArrowInvalid:
            for index, value in enumerate(strings.to_pylist()):
                if value is None:
                    continue
                try:
                    pa.scalar(value).cast(typ)
                except pa.ArrowInvalid:
                    self._raise_bad_value(strings, column, typ, index)
            raise

    # ---- errors
    def column_name(self, column):
        names = self.names
        if names is None and self.header:
            names = self._records(lambda record: True, header=True)
        return names[column] if names is not None and column < len(names) else column

    def where(self, row):
        """'<file>, row <n>' for the n-th data row (1-based) of the file."""
        return f"{self.path}, row {row}"

    def _raise_bad_value(self, strings, column, typ, index):
        row = self.rows_read + index + 1
        raise CsvError(self._bad_value_message(self.where(row), column, strings[index].as_py(), typ), row)

    def _bad_value_message(self, position, column, value, typ):
        return (
            f"{self.step}: {position}, field {self.column_name(column)!r}: {value!r} is not "
            f"{_type_words(typ)} like the values before it in the column (field types are inferred "
            f"from the file's first rows; type_inference=False reads fields as text)"
        )

    def _check_header_text(self):
        """UnicodeDecodeError naming the file when its header line is not UTF-8 text."""
        head = self._head().removeprefix(b"\xef\xbb\xbf")
        head = head[_EMPTY_LINES.match(head).end() :]
        line = re.split(rb"\r|\n", head, maxsplit=1)[0]
        self._check_text(line, "header line", cut=len(line) == len(head) and len(head) >= _SAMPLE_BYTES - 4)

    def _check_text(self, data, where, cut=False):
        """UnicodeDecodeError naming the file when `data` (the start of it, `cut` short when its
        last character may be incomplete) is not UTF-8 text."""
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as ex:
            if cut and ex.reason == "unexpected end of data" and ex.end == len(data):
                return
            reason = f"{ex.reason} ({self.step}: {self.path}, {where})"
            raise UnicodeDecodeError(ex.encoding, ex.object, ex.start, ex.end, reason) from None

    def _head(self, size=_SAMPLE_BYTES):
        """The first `size` bytes of the file (decompressed)."""
        fs, inner = get_filesystem(self.path, self.storage_options)
        with fs.open(inner, "rb", compression="infer") as f:
            return f.read(size)

    def _header_lines(self):
        """The lines the header takes, with the empty lines before it (pyarrow skips empty lines,
        but counts them among the rows it is told to skip)."""
        if not self.header:
            return 0
        if self._header_line_count is None:
            empty = _EMPTY_LINES.match(self._head().removeprefix(b"\xef\xbb\xbf")).group(0)
            self._header_line_count = 1 + empty.count(b"\n") + empty.replace(b"\r\n", b"\n").count(b"\r")
        return self._header_line_count

    def _check_first_block_text(self):
        block = self._head(BLOCK_BYTES)
        try:
            self._check_text(block, "", cut=len(block) == BLOCK_BYTES)
        except UnicodeDecodeError:
            raise self._not_utf8() from None

    def _check_no_row(self):
        """For a file in which pyarrow finds no row: nothing when it holds no text or one line
        without a line end (no row, as for the reference), else an error naming the file."""
        head = self._head()
        text = head.removeprefix(b"\xef\xbb\xbf").strip(b" \t\r\n")
        if not text:
            return
        self._check_text(text, "header line" if self.header else "row 1", cut=len(head) == _SAMPLE_BYTES)
        if b"\x00" in text:
            raise CsvError(f"{self.step}: {self.path} holds a NUL byte in its first line: it is not CSV text")
        if b"\n" in text or b"\r" in text:
            raise CsvError(
                f"{self.step}: {self.path}: no row can be read, its first line never ends "
                "(a quote that is never closed?)"
            )

    def _not_utf8(self, column=None, first_row=1):
        """The UnicodeDecodeError for the first field of `column` (of any column when None), from
        data row `first_row` on, that is not UTF-8 text."""

        def bad_field(record):
            columns = range(len(record)) if column is None else [column] if len(record) > column else []
            return next((c for c in columns if _SURROGATE.search(record[c])), None)

        found = []

        def holds_bad_field(record):
            bad = bad_field(record)
            if bad is not None:
                found.append((record, bad))
            return bad is not None

        row, line = self._find_row(holds_bad_field, first_row)
        if row is None:
            field = "" if column is None else f", field {self.column_name(column)!r}"
            return CsvError(f"{self.step}: {self.path}{field}: not UTF-8 text")
        record, column = found[0]
        raw = record[column].encode("utf-8", "surrogateescape")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as ex:
            where = f"{self.step}: {self.path}, row {row} (line {line}), field {self.column_name(column)!r}"
            error = UnicodeDecodeError(ex.encoding, raw, ex.start, ex.end, f"{ex.reason} ({where})")
            error.row = row
            return error
        return CsvError(f"{self.step}: {self.path}, row {row}: not UTF-8 text", row)

    def _located(self, ex):
        """An error naming the file and row for a pyarrow CSV error."""
        message = str(ex)
        utf8 = _UTF8_ERROR.search(message)
        if utf8:
            return self._not_utf8(int(utf8.group(1)), first_row=self.rows_read + 1)
        bad = _PARSE_ERROR.search(message)
        if bad:
            expected, actual, text = int(bad.group(1)), int(bad.group(2)), bad.group(3)
            row, line = self._find_row(lambda record: len(record) != expected)
            position = f"row {row} (line {line})" if row is not None else "a row"
            what = "the header" if self.header else "the first row"
            fields = f"has {actual} fields where {what} has {expected}"
            return CsvError(f"{self.step}: {self.path}, {position} {fields}: {text!r}", row)
        match = _CONVERSION_ERROR.search(message)
        if match:
            column, typ, value = int(match.group(1)), match.group(2), match.group(3)
            start = self.rows_read
            row, line = self._find_row(
                lambda record: len(record) > column and record[column] == value, first_row=start + 1
            )
            position = f"row {row} (line {line})" if row is not None else f"a row after row {start}"
            return CsvError(self._bad_value_message(f"{self.path}, {position}", column, value, typ), row)
        try:
            return type(ex)(f"{self.step}: cannot read {self.path}: {message}")
        except Exception:
            return ex

    def _find_row(self, is_bad, first_row=1):
        """(data row number, line number) of the first data row from `first_row` on where
        `is_bad(fields)`, by reading the file again with the csv module; (None, None) if none."""
        found = self._records(is_bad, first_row=first_row)
        return (None, None) if found is None else found

    def _records(self, is_bad, first_row=1, header=False):
        """What `_find_row` finds, or with `header` the header's fields."""
        try:
            with (
                fsspec.open(self.path, "rb", compression="infer", **(self.storage_options or {})) as raw,
                io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="") as text,
            ):
                reader = csv.reader(text)
                if self.header:
                    # pyarrow skips empty lines: they are not rows
                    names = next((r for r in reader if r), None)
                    if header:
                        return names
                row = 0
                for record in reader:
                    if not record:
                        continue
                    row += 1
                    if row >= first_row and is_bad(record):
                        return row, reader.line_num
        except (OSError, UnicodeDecodeError, csv.Error):
            pass
        return None


def _infer_type(strings):
    """The type of a column from its first values: int64, float64, bool or string."""
    for typ in (pa.int64(), pa.float64()):
        try:
            pc.cast(strings, typ)
            return typ
        except pa.ArrowInvalid:
            pass
    lower = pc.utf8_lower(strings)
    if pc.all(pc.is_in(lower, pa.array(["true", "false"]))).as_py():
        return pa.bool_()
    return pa.string()


def _type_words(typ):
    name = str(typ)
    if name.startswith(("int", "uint")):
        return "an integer"
    if name in ("double", "float"):
        return "a number"
    if name in ("bool", "boolean"):
        return "true or false"
    return f"a {name} value"
