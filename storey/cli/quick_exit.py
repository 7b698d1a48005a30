"""The end of a `storey` process. Once a command has finished and every exit handler has run,
the process ends at once, without the interpreter tearing its modules down object by object
(0.2 s after a backfill, most of it Numba's and pyarrow's objects). Nothing is left to write by
then: the flow closed its files when it terminated, and standard output and error are flushed
here. A command that raised ends the usual way."""

import atexit
import os
import sys

_STATUS = []


def end_after_exit_handlers(status):
    """Ends the process with `status` (an int, or None for 0) once its exit handlers have run."""
    _STATUS[:] = [status or 0]


def _end():
    if not _STATUS:
        return
    status = _STATUS[0]
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 120  # what the interpreter returns when it cannot flush
    os._exit(status)


# Exit handlers run last registered first. This one is registered when `storey.cli` is imported,
# before a command imports what registers handlers of its own (logging, Dask, ...): it runs after
# them.
atexit.register(_end)
