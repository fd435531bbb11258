"""Worker names: how a cluster names its workers, and where a name says a worker belongs.

A node's workers are `<host>-<i>` (the node agent names them); the workers of `--jobs` batch
jobs are `job<i>-<cluster id>`, and dask-jobqueue adds `-<k>` when one job runs several. The
supervisor counts workers per place from these names (it writes status.json from them), so
both forms are made and read here only. Standard library only (node agents import it).
"""

from __future__ import annotations


def node_worker(host: str, index: int) -> str:
    return f"{host}-{index}"


def job_worker(index: int, cluster_id: str) -> str:
    """The name dask-jobqueue gives the workers of batch job `index` of this cluster."""
    return f"job{index}-{cluster_id}"


def place(worker_name: str, cluster_id: str) -> str:
    """Where a worker belongs: its node's host, or `job<i>` for a batch job's worker."""
    job, _, rest = worker_name.partition("-")
    if job.startswith("job") and job[3:].isdigit() and rest.startswith(cluster_id):
        return job
    return worker_name.rsplit("-", 1)[0]
