"""Piece files: the frames one shuffle task sends to one partition, in order.

A piece is written under a temporary name and renamed when the task has read its whole input,
so that a partition never reads half a piece (a task killed midway leaves only a hidden
temporary file, and its rerun writes the piece whole). Each frame is preceded by its length (8
bytes, little-endian).
"""

import struct

from storey.core.storage import AtomicFile, get_filesystem, is_local

_LENGTH = struct.Struct("<Q")


class PieceWriter:
    """Appends frames to the piece `path` (a local path or an fsspec URL); `commit()` makes it
    appear, `discard()` removes what was written."""

    def __init__(self, path, storage_options=None):
        fs, inner = get_filesystem(path, storage_options)
        self._atomic = AtomicFile(fs, inner)
        self._file = self._atomic.open_binary() if is_local(fs) else self._atomic.target
        self.frames = 0

    def write(self, frame):
        self._file.write(_LENGTH.pack(len(frame)))
        self._file.write(frame)
        self.frames += 1

    def commit(self):
        self._atomic.commit()

    def discard(self):
        self._atomic.discard()


def read_frames(path, storage_options=None):
    """The frames of the piece `path`, in the order they were written."""
    fs, inner = get_filesystem(path, storage_options)
    with fs.open(inner, "rb") as f:
        while True:
            head = f.read(_LENGTH.size)
            if not head:
                return
            if len(head) < _LENGTH.size:
                raise OSError(f"shuffle piece {path} is truncated")
            (length,) = _LENGTH.unpack(head)
            frame = f.read(length)
            if len(frame) < length:
                raise OSError(f"shuffle piece {path} is truncated")
            yield frame
