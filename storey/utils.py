"""Helpers storey 1.0.6 gives as `storey.utils`, which code written against it imports."""

from urllib.parse import urlparse

import fsspec

from .core.paths import get_in, split_container_path, update_in

__all__ = ["get_in", "update_in", "url_to_file_system"]


def url_to_file_system(url, storage_options):
    """(fsspec filesystem, path within it) of a local path or URL; `storage_options` configure
    the filesystem."""
    scheme = ""
    path = url
    if "://" in url:
        parsed = urlparse(url)
        scheme = parsed.scheme.lower()
        path = parsed.path if scheme == "v3io" else f"{parsed.netloc}{parsed.path}"
    return fsspec.filesystem(scheme or "file", **(storage_options or {})), path


_split_path = split_container_path
