"""Writing Parquet files off the flow's thread: pyarrow releases the GIL while it encodes and
writes, so the flow reads and computes the next batches meanwhile.

`BackgroundWrites` runs writes one after the other in a worker thread; an error in a write is
raised by the next call. `StreamedFile` writes one file part by part (one row group per part);
when a part's column types differ from the file's so far (a column that was all null gets
values, ints meet a null), the parts written are read back and the file is written again with
the types of all its data, as if it had been written at once.
"""

from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq

from ...core.storage import AtomicFile, is_local, join, remove_stale_temporaries, split

# The empty file that marks an output directory complete, written last (as Spark and Hadoop do).
SUCCESS_MARKER = "_SUCCESS"

# A column's dictionary encoding is given up, for the rest of a row group, once its dictionary
# passes this size (pyarrow's default is 1 MB): a column of mostly distinct values (times,
# measurements) then does not cost a dictionary built and thrown away per row group (with the
# default, that doubled the time to write a file in parts). Columns of few values keep theirs.
WRITE_OPTIONS = {"dictionary_pagesize_limit": 128 * 1024}


def write_file(fs, path, table):
    """Writes `table` as the Parquet file `path`, which appears only once complete."""
    out = AtomicFile(fs, path)
    try:
        pq.write_table(table, out.target, **WRITE_OPTIONS)
    except BaseException:
        out.discard()
        raise
    out.commit()


class DirectoryOutput:
    """The files one run writes into an output directory. The directory is marked complete by an
    empty `_SUCCESS` file written last (`complete()`); when the run fails, `remove()` removes the
    files written (and the folders made for them only), leaving the directory as it was. A
    marker of an earlier run is removed before the first file is written, and put back by
    `remove()`. Temporaries that killed writers left are removed first."""

    def __init__(self, fs, root):
        self._fs = fs
        self._root = root
        self._parts = []
        self._created = not fs.exists(root)
        self._marker = join(fs, root, SUCCESS_MARKER)
        remove_stale_temporaries(fs, root, recursive=True)
        self._had_marker = not self._created and fs.exists(self._marker)
        if self._had_marker:
            fs.rm(self._marker)

    def write(self, path, table):
        """Writes `table` as the file `path` in the directory (from the writer thread)."""
        write_file(self._fs, path, table)
        self._parts.append(path)

    def complete(self):
        with self._fs.open(self._marker, "wb"):
            pass

    def remove(self):
        fs = self._fs
        folders = set()
        for path in self._parts:
            try:
                fs.rm(path)
            except FileNotFoundError:
                pass
            folders.add(_parent(fs, path))
        self._parts = []
        # the partition folders made for them, deepest first, when nothing else is in them
        for folder in sorted(folders, key=len, reverse=True):
            while folder.startswith(self._root) and folder != self._root:
                if not _remove_if_empty(fs, folder):
                    break
                folder = _parent(fs, folder)
        if self._created:
            _remove_if_empty(fs, self._root)
        elif self._had_marker:
            self.complete()


def _parent(fs, path):
    return split(fs, path)[0]


def _remove_if_empty(fs, folder):
    try:
        if fs.exists(folder) and not fs.ls(folder):
            fs.rmdir(folder)
        return not fs.exists(folder)
    except OSError:
        return False


class BackgroundWrites:
    """Runs write functions in order in one worker thread, at most `depth` waiting."""

    def __init__(self, depth=2):
        self._depth = depth
        self._executor = None
        self._pending = []

    def submit(self, fn, *args):
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="storey-parquet-writer")
        while len(self._pending) >= self._depth:
            self._pending.pop(0).result()
        self._pending.append(self._executor.submit(fn, *args))

    def drain(self):
        """Waits for every write; raises the first error."""
        pending, self._pending = self._pending, []
        error = None
        for future in pending:
            try:
                future.result()
            except BaseException as ex:  # noqa: BLE001 - re-raised below, after waiting for all
                error = error or ex
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if error is not None:
            raise error


class StreamedFile:
    """One local Parquet file written part by part; `merge(tables)` gives the table of several
    parts typed as one. Call from the writer thread only."""

    def __init__(self, fs, path, merge):
        self._fs = fs
        self._path = path
        self._merge = merge
        self._out = None
        self._writer = None
        folder, name = split(fs, path)
        remove_stale_temporaries(fs, folder, name)

    @staticmethod
    def supported(fs):
        return is_local(fs)

    def append(self, table):
        if self._writer is None:
            self._open(table)
            return
        if not table.schema.equals(self._writer.schema, check_metadata=False):
            self._writer.close()
            written = pq.read_table(self._out.target)
            self._out.discard()
            self._open(self._merge([written, table]))
            return
        self._writer.write_table(table)

    def _open(self, table):
        self._out = AtomicFile(self._fs, self._path)
        self._writer = pq.ParquetWriter(self._out.target, table.schema, **WRITE_OPTIONS)
        self._writer.write_table(table)

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._out.commit()

    def discard(self):
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._writer = None
                self._out.discard()
