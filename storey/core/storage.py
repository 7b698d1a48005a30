"""Where files live: local paths or fsspec URLs (file://, memory://, s3://, ...)."""

import fcntl
import os
import posixpath
import re
import shutil
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


# A temporary name: hidden, next to the final one, unique, and recognisable as a temporary of it.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{32}\.tmp")


def temporary_path(fs, path):
    """A new hidden name next to `path` for writing it: `.NAME.<32 hex digits>.tmp`."""
    parent, name = split(fs, path)
    return join(fs, parent, f".{name}.{uuid.uuid4().hex}.tmp")


class OwnerLock:
    """An exclusive lock on a local file or directory, held while this process writes it: a
    temporary whose lock can be taken belongs to no living writer (see remove_stale_temporaries).
    The lock goes with the process, however it ends."""

    def __init__(self, path, create=False):
        flags = os.O_RDONLY if not create else os.O_WRONLY | os.O_CREAT | os.O_EXCL
        self._fd = os.open(path, flags, 0o666)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            raise

    def release(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def remove_stale_temporaries(fs, folder, name=None, recursive=False):
    """Removes the temporaries (files or directories named as `temporary_path` names them, for
    final name `name` or any) that writers which have ended left in `folder` (and its
    subfolders when `recursive`), on the local filesystem. A temporary a living writer holds
    is left alone."""
    folder = folder or "."
    if not is_local(fs) or not os.path.isdir(folder):
        return
    for parent, folders, files in os.walk(folder):
        for entry in [*folders, *files]:
            match = _TEMPORARY.fullmatch(entry)
            if match and (name is None or match.group("name") == name):
                _remove_if_stale(os.path.join(parent, entry))
        folders[:] = [f for f in folders if not _TEMPORARY.fullmatch(f)] if recursive else []


def _remove_if_stale(path):
    try:
        lock = OwnerLock(path)
    except OSError:
        return  # held by a living writer, or gone already
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass
    finally:
        lock.release()


class AtomicFile:
    """A file written under a hidden temporary name next to `path` and renamed to `path` when
    committed, so that `path` never holds a half-written file. Readers of a directory skip the
    temporary name (it starts with '.'). On the local filesystem the temporary is locked while
    it is written, so that `remove_stale_temporaries` can remove those a killed writer left.

    `target` is what writers are handed: the temporary path for the local filesystem, an open
    binary file object otherwise.
    """

    def __init__(self, fs, path):
        self.fs = fs
        self.path = path
        parent, _ = split(fs, path)
        self.tmp_path = temporary_path(fs, path)
        if parent:
            fs.makedirs(parent, exist_ok=True)
        self._lock = OwnerLock(self.tmp_path, create=True) if is_local(fs) else None
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
        try:
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
        finally:
            self._release()

    def discard(self):
        """Closes and removes the temporary file."""
        try:
            self._close_file()
        finally:
            try:
                self.fs.rm(self.tmp_path)
            except FileNotFoundError:
                pass
            finally:
                self._release()

    def _close_file(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def _release(self):
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def split(fs, path):
    """(folder, name) of `path`."""
    if is_local(fs):
        return os.path.split(path)
    return posixpath.split(path)
