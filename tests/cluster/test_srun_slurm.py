"""start-dask-cluster inside real Slurm jobs with the srun launcher (the auto choice there).

salloc gives a shell on the login node (the root namespace here): the scheduler runs there and
one srun step runs the workers on the allocated nodes. An sbatch script runs on the first node
of its job. Cancelling the job or reaching its time limit must leave nothing on any node.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest
from cluster_helpers import PYTHON
from slurm_jobs import SlurmUser

pytestmark = pytest.mark.slurm



def test_salloc_two_nodes_auto_picks_srun(slurm_user: SlurmUser, tmp_path: Path) -> None:
    # A PATH with Slurm's commands and nothing else (no shell): the step gets it (--export=ALL).
    only_slurm = tmp_path / "only-slurm"
    only_slurm.mkdir()
    for command in ("srun", "squeue"):
        (only_slurm / command).symlink_to(shutil.which(command) or command)
    result = slurm_user.salloc(2, "", start_path=str(only_slurm))
    assert "launcher srun (inside Slurm job" in slurm_user.start_output()
    assert result["hostnames"] == slurm_user.allocated()
    assert all(worker.startswith("tls://") for worker in result["workers"])
    assert result["squares"] == sum(i * i for i in range(len(result["workers"])))
    assert slurm_user.leftovers() == {}  # stop returned: nothing of the cluster is left


def test_sbatch_three_nodes_scancel_leaves_nothing(slurm_user: SlurmUser) -> None:
    job = slurm_user.sbatch(3, "--launcher srun")
    result = slurm_user.wait_ready(job)
    assert result["hostnames"] == ["node1", "node2", "node3"]
    assert slurm_user.leftovers().keys() >= {"node1", "node2", "node3"}
    assert slurm_user.slurm.run(["scancel", job]).returncode == 0
    slurm_user.slurm.wait_jobs_gone()
    assert slurm_user.wait_until_clean() == {}


def test_workers_retire_before_the_walltime_and_expiry_leaves_nothing(
        slurm_user: SlurmUser) -> None:
    """Issue 13's "the job ends (walltime)": nothing on any node, no scratch, link refused."""
    job = slurm_user.sbatch(2, "", "--time=1")  # one minute: Slurm's smallest limit
    result = slurm_user.wait_ready(job)
    assert result["hostnames"] == slurm_user.allocated()
    printed = (slurm_user.home / "start.out").read_text()
    host, port = re.search(r"dashboard: +http://([\d.]+):(\d+)/", printed).groups()
    # Workers got a lifetime ending a margin before the job's end (a fifth of what was left):
    # they retire, and with them the agents, the srun step and the scheduler, all while the
    # job still runs.
    deadline = time.monotonic() + 120
    while slurm_user.leftovers():
        assert time.monotonic() < deadline, "the cluster did not retire before the time limit"
        time.sleep(0.5)
    state = slurm_user.slurm.run(["squeue", "-h", "-j", job, "-o", "%T"]).stdout.strip()
    assert state == "RUNNING"
    slurm_user.slurm.wait_jobs_gone(timeout=120)  # Slurm ends the job at its limit
    assert slurm_user.wait_until_clean() == {}  # no process, no scratch directory
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=5).close()
    status = slurm_user.slurm.run([PYTHON, "-m", "daskhpc", "status"], env=slurm_user.env)
    assert status.returncode == 3 and "dead" in status.stdout, status


def test_killed_supervisor_takes_the_srun_step_down(slurm_user: SlurmUser) -> None:
    job = slurm_user.sbatch(2, "--launcher srun")
    slurm_user.wait_ready(job)
    (cluster,) = (slurm_user.home / ".local" / "state" / "daskhpc" / "clusters").iterdir()
    supervisor = json.loads((cluster / "supervisor.json").read_text())["pid"]
    os.kill(supervisor, signal.SIGKILL)  # the scheduler runs inside it
    # srun passes the signal it gets then (PR_SET_PDEATHSIG) to the agents: they end their
    # workers and remove their directories, and the step ends; the job (the batch script) goes
    # on. Only the scheduler's directory is left ...
    assert slurm_user.wait_until_clean(scratch=False) == {}
    assert slurm_user.leftovers().keys() == {"scheduler"}
    state = slurm_user.slurm.run(["squeue", "-h", "-j", job, "-o", "%T"]).stdout.strip()
    assert state == "RUNNING"
    # ... for stop-dask-cluster where the supervisor ran (the batch script's node)
    stop = slurm_user.slurm.run(["srun", f"--jobid={job}", "--overlap", "-N1", "-n1",
                                 f"--nodelist={slurm_user.allocated()[0]}",
                                 PYTHON, "-m", "daskhpc", "stop"], env=slurm_user.env)
    assert stop.returncode == 0, stop.stderr
    assert slurm_user.leftovers() == {}
