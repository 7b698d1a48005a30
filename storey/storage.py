"""Where files live: local paths or fsspec URLs (file://, memory://, s3://, ...)."""

import os

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
