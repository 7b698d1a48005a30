"""Where `storey backfill` writes OUT: a hidden folder next to it, whose result takes OUT's name
only once the run is complete.

A run that fails or is interrupted removes its folder; one that is killed leaves it, hidden and
locked by nobody, and the next run writing the same OUT removes it. With --overwrite, the
previous OUT stays in place until the new one is complete.
"""

from storey.core.storage import (
    OwnerLock,
    get_filesystem,
    is_local,
    join,
    remove_stale_temporaries,
    split,
    temporary_path,
)


class StagedOutput:
    """A hidden folder next to OUT holding what the run writes (`url`, named as OUT is);
    `publish()` gives it OUT's name, `discard()` removes it."""

    def __init__(self, out):
        self._fs, self._final = get_filesystem(out)
        fs = self._fs
        parent, name = split(fs, self._final)
        if parent:
            fs.makedirs(parent, exist_ok=True)
        remove_stale_temporaries(fs, parent, name)
        self._folder = temporary_path(fs, self._final)
        fs.makedirs(self._folder, exist_ok=False)
        self._lock = OwnerLock(self._folder) if is_local(fs) else None
        self._written = join(fs, self._folder, name)
        self.url = _as_url(out, self._written)

    def publish(self):
        """Replaces OUT with what the run wrote (or removes OUT when the run wrote nothing)."""
        fs = self._fs
        if fs.exists(self._final):
            fs.mv(self._final, join(fs, self._folder, "previous"), recursive=True)
        if fs.exists(self._written):
            fs.mv(self._written, self._final, recursive=True)
        self.discard()

    def discard(self):
        try:
            self._fs.rm(self._folder, recursive=True)
        except FileNotFoundError:
            pass
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None


def _as_url(out, path):
    """`path` written as OUT is: a local path, or a URL of OUT's protocol."""
    if "://" not in out:
        return path
    protocol = out.split("://", 1)[0]
    return f"file://{path}" if protocol == "file" else f"{protocol}://{path.lstrip('/')}"
