"""2-D arrays that grow by rows, each a fixed width, without copying what they hold.

Past a few MB, the rows live in an anonymous memory mapping reserved for many more rows than
used: pages never touched take no memory, and a larger array is a longer view of the same
memory. Growing a 50 MB aggregation state by copying it took ~30 ms each time (and twice the
memory meanwhile); a table that meets its keys a few at a time, as a live flow does, grew that
way once per doubling.
"""

import mmap
import sys

import numpy as np

__all__ = ["GrowingRows"]

# below this size rows are an ordinary array, copied to grow (tables of a few keys, tests)
_MAPPED_FROM = 4 << 20
# a mapping is reserved for at least this many bytes, or 16 times the rows needed
_RESERVE = 1 << 30
_NO_RESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000 if sys.platform.startswith("linux") else 0)


class GrowingRows:
    """`array` is a (rows, width) C-contiguous array of `dtype` whose new rows hold `fill`."""

    __slots__ = ("width", "dtype", "fill", "array", "_mapping", "_reserved")

    def __init__(self, rows, width, dtype, fill):
        self.width = width
        self.dtype = np.dtype(dtype)
        self.fill = fill
        self.array = np.full((rows, width), fill, dtype=self.dtype)
        self._mapping = None
        self._reserved = 0

    def grow(self, rows):
        """Makes `array` `rows` long (never shorter), keeping what it holds."""
        old = self.array
        used = old.shape[0]
        if rows <= used:
            return
        row_bytes = self.width * self.dtype.itemsize
        if rows > self._reserved and rows * row_bytes >= _MAPPED_FROM:
            self._map(max(_RESERVE // row_bytes, 16 * rows), old)
        if rows <= self._reserved:
            count = rows * self.width
            self.array = np.frombuffer(self._mapping, dtype=self.dtype, count=count).reshape(rows, self.width)
            if self.fill != 0:
                self.array[used:] = self.fill
            return
        array = np.empty((rows, self.width), dtype=self.dtype)
        array[:used] = old
        array[used:] = self.fill
        self.array = array

    def _map(self, reserved, old):
        """Moves the rows into a new mapping reserved for `reserved` rows (zero until written)."""
        try:
            mapping = mmap.mmap(
                -1,
                reserved * self.width * self.dtype.itemsize,
                flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _NO_RESERVE,
            )
        except (OSError, ValueError, OverflowError):
            return  # no room to reserve: rows are copied to grow
        # no MADV_HUGEPAGE: where the kernel defragments for such mappings (transparent huge
        # pages' defrag "madvise"), the first write to each 2 MB stalled for up to 5-15 ms while it
        # compacted memory; a live flow meeting new keys hit one every few hundred keys
        used = old.shape[0]
        if used:
            view = np.frombuffer(mapping, dtype=self.dtype, count=used * self.width).reshape(used, self.width)
            view[:] = old
        self._mapping = mapping
        self._reserved = reserved
