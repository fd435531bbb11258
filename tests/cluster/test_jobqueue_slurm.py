"""start-dask-cluster --jobs N: dask-jobqueue submits worker jobs to the real Slurm that join the
same (TLS) scheduler; stop-dask-cluster cancels them."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from cluster_helpers import PYTHON
from slurm_jobs import CLIENT_SETTINGS, SlurmUser

pytestmark = pytest.mark.slurm

# Waits until the batch-job worker has joined; reports every worker's name and node.
WAIT_FOR_JOB_WORKER = CLIENT_SETTINGS + """
import json, os, socket, time
from dask.distributed import Client
with Client(scheduler_file=os.path.expanduser("~/dask-scheduler.json"), timeout=30) as client:
    deadline = time.monotonic() + 120
    while not any(str(w["name"]).startswith("job0-")
                  for w in client.scheduler_info(n_workers=-1)["workers"].values()):
        assert time.monotonic() < deadline, "the batch-job worker never joined"
        time.sleep(0.5)
    names = client.run(lambda dask_worker: str(dask_worker.name))
    hosts = client.run(socket.gethostname)
    places = client.run(lambda dask_worker: dask_worker.local_directory)
    tls = all(address.startswith("tls://") for address in names)
print(json.dumps({"workers": sorted(f"{names[a]}@{hosts[a]}" for a in names), "tls": tls,
                  "directories": {names[a]: places[a] for a in names}}))
"""


def job_names(queue: Path) -> list[str]:
    return [line.split()[1] for line in queue.read_text().splitlines()]



def test_jobs_join_the_cluster_and_stop_cancels_them(slurm_user: SlurmUser) -> None:
    home = slurm_user.home
    (home / "wait.py").write_text(WAIT_FOR_JOB_WORKER)
    python = shlex.quote(PYTHON)
    script = home / "job.sh"
    script.write_text(
        "#!/bin/sh\nset -e\ncd \"$HOME\"\n"
        f"{python} -m daskhpc start --jobs 1 > start.out 2> start.err\n"
        f"{python} wait.py > joined.json\n"
        f"{python} -m daskhpc status --json > status.json\n"
        "squeue -h -o '%i %j' > queue_before\n"
        f"{python} -m daskhpc stop > stop.out 2> stop.err\n"
        "squeue -h -o '%i %j' > queue_after\n"
    )
    script.chmod(0o755)
    # The site's dask-jobqueue settings: a job fits the test nodes (2 CPUs, 1000 MB).
    env = {"DASK_JOBQUEUE__SLURM__CORES": "1", "DASK_JOBQUEUE__SLURM__MEMORY": "500MiB"}
    result = slurm_user.slurm.run(["salloc", "-N1", str(script)], env={**slurm_user.env, **env},
                                  timeout=300)
    assert result.returncode == 0, slurm_user.logs(result.stderr)
    assert "submitted 1 worker job(s)" in (home / "start.out").read_text()
    joined = json.loads((home / "joined.json").read_text())
    assert len(joined["workers"]) == 2 and joined["tls"]
    assert any(worker.startswith("job0-") for worker in joined["workers"])
    # the batch job's worker keeps its files where the cluster's convention says, and they go
    # with the job (checked below: no scratch left)
    cluster_id = json.loads((home / "status.json").read_text())["id"]
    job_directory = next(path for name, path in joined["directories"].items()
                         if name.startswith("job0-"))
    assert job_directory.startswith(f"/tmp/daskhpc-{cluster_id}-job0/"), job_directory
    status = json.loads((home / "status.json").read_text())
    assert status["workers"] == 2, "the batch job's worker counts"
    assert [(row["host"], row["workers"]) for row in status["nodes"]][-1] == ("job0", 1)
    assert any(name.startswith("dask-") for name in job_names(home / "queue_before"))
    assert not any(name.startswith("dask-") for name in job_names(home / "queue_after"))
    slurm_user.slurm.wait_jobs_gone()
    assert slurm_user.wait_until_clean() == {}


def test_jobs_that_cannot_be_submitted_fail_the_start_and_leave_nothing(
        slurm_user: SlurmUser) -> None:
    """sbatch refuses the site's settings (a partition that does not exist): start says so in
    one line, exits non-zero, and stops the cluster it had started: nothing is left running."""
    home = slurm_user.home
    python = shlex.quote(PYTHON)
    script = home / "refused.sh"
    script.write_text(
        "#!/bin/sh\ncd \"$HOME\"\n"
        f"{python} -m daskhpc start --jobs 1 > refused.out 2> refused.err; echo $? > start.code\n"
        f"{python} -m daskhpc status > status.out 2>&1\n"
        "squeue -h -o '%i %j' > refused_queue\n"
    )
    script.chmod(0o755)
    env = {"DASK_JOBQUEUE__SLURM__QUEUE": "no-such-partition",
           "DASK_JOBQUEUE__SLURM__CORES": "1", "DASK_JOBQUEUE__SLURM__MEMORY": "500MiB"}
    result = slurm_user.slurm.run(["salloc", "-N1", str(script)], env={**slurm_user.env, **env},
                                  timeout=300)
    assert result.returncode == 0, slurm_user.logs(result.stderr)
    assert (home / "start.code").read_text().strip() != "0"
    error = (home / "refused.err").read_text().strip().splitlines()[-1]
    assert "submitting worker job 1 of 1 failed" in error and "partition" in error.lower()
    assert "stopped, nothing of it is left running" in error
    assert "no cluster is running" in (home / "status.out").read_text()
    assert not [name for name in job_names(home / "refused_queue") if name.startswith("dask-")]
    # this environment's processes (not other test sessions'), and the cluster's scratch
    assert slurm_user.leftovers() == {}
