"""Paths as pyarrow sees them: the local filesystem directly, any other fsspec URL through fsspec."""

import errno
import os

import pyarrow.fs as pafs
from fsspec.implementations.local import LocalFileSystem

from ...core.storage import get_filesystem


def arrow_filesystem(path, storage_options=None):
    """(pyarrow filesystem, path within it) for a local path or an fsspec URL."""
    fs, inner = get_filesystem(path, storage_options)
    if isinstance(fs, LocalFileSystem):
        return pafs.LocalFileSystem(), os.path.abspath(inner)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), inner


def file_type(fs, inner, path, step):
    """The pyarrow FileType of `inner`; FileNotFoundError naming `path` when nothing is there."""
    info = fs.get_file_info(inner)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(errno.ENOENT, f"{step}: no such file or directory: {path}", path)
    return info.type
