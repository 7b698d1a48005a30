"""The Dask cluster a distributed backfill runs on: a Client given, a scheduler's address, or a
local cluster of worker processes started (and stopped) for the run."""

import logging
import numbers
import sys
from contextlib import contextmanager

_DASK_MISSING = "a distributed backfill needs Dask: pip install 'storey[dask]'"


def import_distributed():
    """The `distributed` module, or an ImportError saying how to install it."""
    try:
        import distributed
    except ImportError as ex:
        raise ImportError(f"{_DASK_MISSING} ({ex})") from ex
    return distributed


def check_client(client):
    """Raises TypeError/ValueError for a `client` argument that is none of the accepted kinds."""
    if client is None or isinstance(client, str):
        return
    if isinstance(client, numbers.Integral) and not isinstance(client, bool):
        if client < 1:
            raise ValueError(f"client: a number of local workers must be positive, got {client}")
        return
    distributed = sys.modules.get("distributed")
    if distributed is not None and isinstance(client, distributed.Client):
        return
    raise TypeError(
        "client must be a dask.distributed.Client, a scheduler address ('tcp://host:8786') or a number "
        f"of local worker processes, got {type(client).__name__}: {client!r}"
    )


@contextmanager
def dask_client(client=None):
    """A connected `distributed.Client`: `client` itself (left open), a new one connected to the
    scheduler address `client`, or one of a new local cluster of `client` worker processes (None:
    one per core) of one thread each; what this opens is closed on exit."""
    distributed = import_distributed()
    if isinstance(client, distributed.Client):
        yield client
        return
    if isinstance(client, str):
        try:
            connected = distributed.Client(client)
        except OSError as ex:
            raise OSError(f"cannot connect to the Dask scheduler at {client}: {ex}") from ex
        with connected:
            yield connected
        return
    cluster = distributed.LocalCluster(
        n_workers=client,
        threads_per_worker=1,
        processes=True,
        # the dashboard on a free port, if bokeh is installed (8787 may be taken)
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    with cluster, distributed.Client(cluster) as local:
        yield local


def worker_threads(client):
    """The number of threads of the workers connected to the scheduler."""
    return sum(client.nthreads().values())
