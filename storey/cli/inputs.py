"""What `storey backfill SOURCE` reads: a Parquet or CSV file, a directory, a glob, or an fsspec URL.

`resolve_input` finds the files, their format and columns (without reading the data) and how
much work there is (rows from Parquet metadata; bytes for CSV), so that bad input is reported
in one line before any flow starts.
"""

import difflib
import posixpath
from dataclasses import dataclass

import pyarrow as pa

from storey.core.storage import get_filesystem
from storey.sources.file_sources.csv_reading import CsvFile

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv",)
_GLOB_CHARS = "*?["
# CSV: bytes sampled from the first file to estimate the number of rows from the total size
_SAMPLE_BYTES = 1 << 20


class InputError(ValueError):
    """SOURCE cannot be read as asked (missing, unreadable, unknown format or column)."""


@dataclass
class Input:
    """The files of SOURCE and what is known about them before reading."""

    source: str
    format: str  # "parquet" or "csv"
    paths: list  # what the storey source step is given: files, or one Parquet directory
    columns: list
    total_rows: int | None  # exact for Parquet, estimated for CSV
    total_bytes: int | None = None
    types: dict | None = None  # column -> arrow type (for CSV: as the first block holds it)

    @property
    def source_arg(self):
        """The `paths` argument for the source step: a single path stays a string."""
        return self.paths[0] if len(self.paths) == 1 else list(self.paths)

    def check_numbers(self, name, option):
        """Raises InputError when column `name` of SOURCE holds no numbers to aggregate."""
        typ = (self.types or {}).get(name)
        if typ is None or pa.types.is_null(typ) or _is_number(typ):
            return
        raise InputError(
            f"{option}: column {name!r} of {self.source} holds {typ} values, not numbers to aggregate"
        )

    def check_columns(self, names, option):
        """Raises InputError for the first name in `names` that is not a column of SOURCE."""
        for name in names:
            if name not in self.columns:
                hint = difflib.get_close_matches(name, self.columns, n=1)
                hint = f" (did you mean {hint[0]!r}?)" if hint else ""
                shown = ", ".join(c if c.isprintable() else repr(c) for c in self.columns)
                raise InputError(
                    f"{option}: no column {name!r} in {self.source}{hint}; its columns are: {shown}"
                )


def _format_of(path):
    lower = path.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def _visible(path):
    name = posixpath.basename(path.rstrip("/"))
    return not name.startswith((".", "_"))


def _with_protocol(fs, source, path):
    """`path` (as the filesystem lists it) written as SOURCE was: local, or a URL of its protocol."""
    if "://" not in source:
        return path
    protocol = source.split("://", 1)[0]
    return f"{protocol}://{path.lstrip('/')}" if protocol != "file" else f"file://{path}"


def resolve_input(source, fmt=None, storage_options=None):
    """The Input for SOURCE; `fmt` ("parquet"/"csv") overrides the format found from file names."""
    try:
        fs, path = get_filesystem(source, storage_options)
    except (ImportError, ValueError) as ex:
        raise InputError(f"cannot open {source}: {ex}") from ex
    try:
        if any(c in path for c in _GLOB_CHARS):
            files = sorted(p for p in fs.glob(path) if _visible(p) and fs.isfile(p))
            if not files:
                raise InputError(f"no file matches {source}")
            directory = None
        elif fs.isdir(path):
            files = sorted(p for p in fs.find(path) if _visible(p) and _all_visible(p, path))
            if not files:
                raise InputError(f"{source} is an empty directory")
            directory = path
        elif fs.exists(path):
            files = [path]
            directory = None
        else:
            raise InputError(f"no such file or directory: {source}")
    except OSError as ex:
        raise InputError(f"cannot read {source}: {ex}") from ex

    if fmt is None:
        formats = {_format_of(p) for p in files} - {None}
        if len(formats) > 1:
            raise InputError(f"{source} holds both Parquet and CSV files: pass --format")
        if not formats:
            raise InputError(
                f"cannot tell the format of {source} from its file names (.parquet or .csv): pass --format"
            )
        fmt = formats.pop()
    if directory is not None:
        # a directory may hold other files (_SUCCESS, README): read the ones of the format
        wanted = PARQUET_SUFFIXES if fmt == "parquet" else CSV_SUFFIXES
        matching = [p for p in files if p.lower().endswith(wanted)]
        files = matching or files
    if fmt == "parquet":
        return _parquet_input(source, fs, files, directory)
    return _csv_input(source, fs, files)


def _all_visible(path, root):
    relative = path[len(root) :].strip("/")
    return all(not part.startswith((".", "_")) for part in relative.split("/"))


def _parquet_input(source, fs, files, directory):
    try:
        if directory is not None:
            import pyarrow.dataset as ds

            dataset = ds.dataset(directory, filesystem=fs, format="parquet", partitioning="hive")
            paths = [_with_protocol(fs, source, directory)]
            total = sum(fragment.metadata.num_rows for fragment in dataset.get_fragments())
            schema = dataset.schema
        else:
            # files alone need no dataset (pyarrow.dataset imports pandas: 0.3 s of start-up)
            import pyarrow.parquet as pq

            paths = [_with_protocol(fs, source, p) for p in files]
            metadata = [pq.read_metadata(p, filesystem=fs) for p in files]
            total = sum(m.num_rows for m in metadata)
            schema = metadata[0].schema.to_arrow_schema()
    except (OSError, ValueError) as ex:
        raise InputError(f"cannot read {source} as Parquet: {_first_line(ex)}") from ex
    names = list(schema.names)
    return Input(source, "parquet", paths, names, total, types=dict(zip(names, schema.types, strict=True)))


def _csv_input(source, fs, files):
    paths = [_with_protocol(fs, source, p) for p in files]
    try:
        with fs.open(files[0], "rb") as f:
            sample = f.read(_SAMPLE_BYTES)
        total_bytes = sum(fs.size(p) for p in files)
    except OSError as ex:
        raise InputError(f"cannot read {source}: {_first_line(ex)}") from ex
    # the header and the first block, read as CSVSource reads them (the rest is checked as read)
    first = CsvFile(paths[0], None, header=True, type_inference=True, step="CSVSource")
    try:
        schema = first.inferred_schema()
    except UnicodeDecodeError as ex:
        raise InputError(f"cannot read {files[0]} as CSV: it is not UTF-8 text: {ex}") from ex
    except (ValueError, OSError) as ex:
        raise InputError(f"cannot read {files[0]} as CSV: {_first_line(ex)}") from ex
    if schema is None or not first.names:
        raise InputError(f"{files[0]} is empty: a CSV file needs a header line naming its columns")
    line_ends = sample.count(b"\n") or sample.count(b"\r")
    bytes_per_row = max(len(sample) / max(line_ends, 1), 1.0)
    total_rows = max(int(total_bytes / bytes_per_row) - len(files), 0)
    types = dict(zip(first.names, schema.types))
    return Input(source, "csv", paths, list(first.names), total_rows, total_bytes, types)


def _is_number(typ):
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    return (
        pa.types.is_integer(typ)
        or pa.types.is_floating(typ)
        or pa.types.is_decimal(typ)
        or pa.types.is_boolean(typ)
    )


def _first_line(ex):
    text = str(ex).strip()
    return text.splitlines()[0] if text else type(ex).__name__
