"""Connect a notebook to the running Dask cluster, or to a LocalCluster when there is none.

Every example notebook starts with `client = connect(scheduler_file)`. It says which of the two it
did, so a result computed on a laptop-sized LocalCluster is never mistaken for one from the
allocation.
"""

from __future__ import annotations

from pathlib import Path

from dask.distributed import Client, LocalCluster


def connect(scheduler_file: str = "~/dask-scheduler.json", timeout: str = "10s") -> Client:
    """A client of the cluster that wrote `scheduler_file`, else of a new LocalCluster."""
    path = Path(scheduler_file).expanduser()  # Dask does not expand "~" itself
    if not path.exists():
        print(f"No scheduler file at {path}: no cluster runs (start-dask-cluster starts one).")
    else:
        try:
            client = Client(scheduler_file=str(path), timeout=timeout)
        except (OSError, ValueError) as error:  # a file left by a cluster that has ended
            print(f"The scheduler in {path} does not answer ({error}).")
        else:
            threads = client.nthreads()
            print(f"Connected to the cluster at {client.scheduler.address} (from {path}): "
                  f"{len(threads)} workers, {sum(threads.values())} threads.")
            return client
    client = Client(LocalCluster())
    print(f"Started a LocalCluster on this machine only: {len(client.nthreads())} workers.")
    return client

