"""start-dask-cluster --launcher mpi: one mpirun starts the workers on one host, across the
simulated nodes (Open MPI over their ssh), and inside real Slurm jobs (Open MPI over srun)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from cluster_helpers import User, leftovers, recorded_alive, wait_until_clean
from slurm_jobs import SlurmUser
from testbed.mpi import across_nodes_env, run_as_root_env

pytestmark = pytest.mark.mpi


def test_mpirun_on_one_host(mpi_available: None, user: User) -> None:
    user.extra_env.update(run_as_root_env())
    spec = user.start("--launcher", "mpi", "--workers-per-node", "2", "--no-nanny")
    assert spec["launcher"] == "mpi" and not spec["nanny"]
    result = user.compute(spec)
    assert len(result["workers"]) == 2
    assert result["sum"] == 5050
    stop = user.dask("stop")
    assert stop.returncode == 0, stop.stderr
    assert recorded_alive(Path(spec["cluster_dir"])) == []


@pytest.mark.ssh_nodes
def test_mpirun_across_the_nodes(mpi_available: None, node_user: User) -> None:
    assert node_user.bed is not None
    node_user.extra_env.update(across_nodes_env(node_user.bed))
    hostfile = str(node_user.hostfile("node1", "node2", "node3"))
    spec = node_user.start("--launcher", "mpi", "--hostfile", hostfile, "--interface", "eth0")
    result = node_user.compute(spec)
    assert result["hostnames"] == ["node1", "node2", "node3"]
    assert sorted(w.split("://")[1].rsplit(":", 1)[0] for w in result["workers"]) == sorted(
        node.address for node in node_user.bed.nodes)
    assert node_user.dask("stop").returncode == 0
    assert leftovers(node_user.bed) == {}



@pytest.mark.slurm
def test_salloc_two_nodes_mpi(mpi_available: None, slurm_user: SlurmUser) -> None:
    result = slurm_user.salloc(2, "--launcher mpi")
    assert "launcher mpi" in slurm_user.start_output()
    assert result["hostnames"] == slurm_user.allocated()
    assert slurm_user.leftovers() == {}


@pytest.mark.slurm
def test_sbatch_three_nodes_mpi_scancel_leaves_nothing(mpi_available: None,
                                                       slurm_user: SlurmUser) -> None:
    job = slurm_user.sbatch(3, "--launcher mpi")
    result = slurm_user.wait_ready(job)
    assert result["hostnames"] == ["node1", "node2", "node3"]
    assert slurm_user.slurm.run(["scancel", job]).returncode == 0
    slurm_user.slurm.wait_jobs_gone()
    assert slurm_user.wait_until_clean() == {}


@pytest.mark.ssh_nodes
def test_killed_supervisor_takes_mpirun_and_every_rank_down(mpi_available: None,
                                                             node_user: User) -> None:
    assert node_user.bed is not None
    node_user.extra_env.update(across_nodes_env(node_user.bed))
    hostfile = str(node_user.hostfile("node1", "node2", "node3"))
    spec = node_user.start("--launcher", "mpi", "--hostfile", hostfile)
    supervisor = json.loads((Path(spec["cluster_dir"]) / "supervisor.json").read_text())["pid"]
    os.kill(supervisor, signal.SIGKILL)
    assert wait_until_clean(node_user.bed) == {}
    stop = node_user.dask("stop")  # tidies the dead cluster's state
    assert stop.returncode == 0, stop.stderr
