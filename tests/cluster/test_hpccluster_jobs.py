"""HPCCluster.scale past the allocation with worker jobs configured (DASKHPC_JOBQUEUE): each further
worker is a dask-jobqueue batch job on the real test Slurm that joins with the cluster's
certificate; scaling back retires it and cancels its job, and close() leaves no job or process."""

from __future__ import annotations

import json

import pytest
from cluster_helpers import PYTHON
from slurm_jobs import SlurmUser

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(600)]

SCALE_PAST_THE_ALLOCATION = """
import json, subprocess, time
from dask.distributed import Client
from daskhpc import HPCCluster

def workers(client):
    return sorted(str(w["name"]) for w in client.scheduler_info(n_workers=-1)["workers"].values())

def wait(client, n):
    deadline = time.monotonic() + 180
    while len(workers(client)) != n:
        assert time.monotonic() < deadline, workers(client)
        time.sleep(0.3)

def queue():
    squeue = subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True)
    return squeue.stdout.split()

with HPCCluster(threads_per_worker=1) as cluster, Client(cluster) as client:
    allocation = len(workers(client))
    cluster.scale(allocation + 1)
    wait(client, allocation + 1)
    grown = workers(client)
    total = client.submit(sum, [1, 2], workers=[w for w in grown if w.startswith("job")]).result()
    queue_grown = queue()
    cluster.scale(allocation)
    wait(client, allocation)
    time.sleep(1)
    queue_back = queue()
    plan = sorted(cluster.workers)
print(json.dumps({"allocation": allocation, "grown": grown, "total": total, "plan": plan,
                  "queue_grown": queue_grown, "queue_back": queue_back, "queue_closed": queue()}))
"""


def test_scale_past_the_allocation_submits_and_cancels_worker_jobs(
    slurm_user: SlurmUser,
) -> None:
    home = slurm_user.home
    (home / "scale.py").write_text(SCALE_PAST_THE_ALLOCATION)
    script = home / "job.sh"
    script.write_text(f"#!/bin/sh\nset -e\ncd \"$HOME\"\n{PYTHON} scale.py > result.json\n")
    script.chmod(0o755)
    # The site's dask-jobqueue settings: a job fits the test nodes (2 CPUs, 1000 MB).
    env = {**slurm_user.env, "DASKHPC_JOBQUEUE": "slurm",
           "DASK_JOBQUEUE__SLURM__MEMORY": "500MiB"}
    result = slurm_user.slurm.run(["salloc", "-N1", str(script)], env=env, timeout=400)
    assert result.returncode == 0, slurm_user.logs(result.stderr)
    seen = json.loads((home / "result.json").read_text())
    allocation = seen["allocation"]
    [job_worker] = [name for name in seen["grown"] if name.startswith("job")]
    assert len(seen["grown"]) == allocation + 1 and seen["total"] == 3
    assert any(name.startswith("dask-") for name in seen["queue_grown"])
    assert not any(name.startswith("dask-") for name in seen["queue_back"])
    assert job_worker not in seen["plan"] and len(seen["plan"]) == allocation
    assert not any(name.startswith("dask-") for name in seen["queue_closed"])
    slurm_user.slurm.wait_jobs_gone()
    assert slurm_user.wait_until_clean() == {}
