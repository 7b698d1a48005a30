"""Numba's on-disk cache of the kernels, kept in step with every source they are built from.

Numba marks a cached function with the time and size of its own file only, while the kernels
inline functions and constants from the other modules of this package: after a change to
`buckets.py` alone (a `git pull` in a checkout), `sliding.py`'s cached machine code would still
load, running the old code. So the cache folder also records a digest of all the sources, and
is emptied when that digest changes.
"""

import glob
import hashlib
import os

SOURCES = (
    "buckets.py",
    "fixed.py",
    "jit.py",
    "layout.py",
    "outputs.py",
    "reference_reads.py",
    "registry.py",
    "sliding.py",
)
_DIGEST_FILE = "kernel-sources.sha256"


def sources_digest(folder, sources=SOURCES):
    digest = hashlib.sha256()
    for name in sources:
        with open(os.path.join(folder, name), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def refresh(folder=os.path.dirname(os.path.abspath(__file__)), sources=SOURCES):
    """Empties the cache in `folder`/__pycache__ when the sources changed since it was filled.
    Returns whether it did. A folder that cannot be written (Numba then caches elsewhere, and
    an installation rewrites every file) is left alone."""
    cache = os.path.join(folder, "__pycache__")
    stamp = os.path.join(cache, _DIGEST_FILE)
    digest = sources_digest(folder, sources)
    try:
        with open(stamp) as f:
            if f.read() == digest:
                return False
    except OSError:
        pass
    try:
        os.makedirs(cache, exist_ok=True)
        for path in glob.glob(os.path.join(cache, "*.nbi")) + glob.glob(os.path.join(cache, "*.nbc")):
            os.remove(path)
        with open(stamp, "w") as f:
            f.write(digest)
    except OSError:
        return False
    return True
