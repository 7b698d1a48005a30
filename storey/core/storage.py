"""Where files live: local paths or fsspec URLs (file://, memory://, s3://, ...)."""

import os
import posixpath
import uuid

import fsspec
from fsspec.implementations.local import LocalFileSystem


def get_filesystem(path, storage_options=None):
    """The filesystem holding `path`, and the path within it.

    Local paths need no fsspec set-up; URLs go through fsspec with `storage_options`.
    """
    path = os.fspath(path)
    if "://" not in path:
        return LocalFileSystem(), path
    fs, inner = fsspec.core.url_to_fs(path, **(storage_options or {}))
    return fs, inner


def is_local(fs):
    """Whether `fs` is the local filesystem (paths can be handed to pyarrow and os directly)."""
    return isinstance(fs, LocalFileSystem)


def join(fs, *parts):
    """`parts` joined with the filesystem's separator, empty parts skipped."""
    parts = [p for p in parts if p]
    if not parts:
        return ""
    return os.path.join(*parts) if is_local(fs) else posixpath.join(*parts)


class AtomicFile:
    """A file written under a hidden temporary name next to `path` and renamed to `path` when
    committed, so that `path` never holds a half-written file. Readers of a directory skip the
    temporary name (it starts with '.').

    `target` is what writers are handed: the temporary path for the local filesystem, an open
    binary file object otherwise.
    """

    def __init__(self, fs, path):
        self.fs = fs
        self.path = path
        parent, name = _split(fs, path)
        self.tmp_path = join(fs, parent, f".{name}.{uuid.uuid4().hex}.tmp")
        if parent:
            fs.makedirs(parent, exist_ok=True)
        self._file = None if is_local(fs) else fs.open(self.tmp_path, "wb")

    @property
    def target(self):
        return self.tmp_path if self._file is None else self._file

    def open_binary(self):
        """A binary file object to append to (opened once)."""
        if self._file is None:
            self._file = open(self.tmp_path, "wb")  # noqa: SIM115
        return self._file

    def commit(self):
        """Closes the temporary file and renames it to the final path (replacing any file there)."""
        self._close_file()
        if is_local(self.fs):
            # renamed over an old file, a new one has its blocks allocated and flushed at once
            # (ext4's auto_da_alloc: 30 ms per 50 MB): the old one is removed first
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.replace(self.tmp_path, self.path)
        else:
            if self.fs.exists(self.path):
                self.fs.rm(self.path)
            self.fs.mv(self.tmp_path, self.path)

    def discard(self):
        """Closes and removes the temporary file."""
        self._close_file()
        try:
            self.fs.rm(self.tmp_path)
        except FileNotFoundError:
            pass

    def _close_file(self):
        if self._file is not None:
            self._file.close()
            self._file = None


def _split(fs, path):
    if is_local(fs):
        return os.path.split(path)
    return posixpath.split(path)
