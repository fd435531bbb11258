"""start-dask-cluster --launcher mpi: one mpirun starts the workers on one host, across the
simulated nodes (Open MPI and MPICH's Hydra over their ssh), and inside real Slurm jobs (Open MPI
over srun)."""

from __future__ import annotations

import json
import os
import shlex
import signal
from pathlib import Path

import pytest
from cluster_helpers import User, recorded_alive
from slurm_jobs import SlurmUser
from testbed.mpi import MPICH_MPIRUN, across_nodes_env, mpich_env, run_as_root_env

from daskhpc.cluster.launchers.mpi import mca_param_configured
from daskhpc.cluster.launchers.ssh import FAST_KEX, kex_options

pytestmark = pytest.mark.mpi


@pytest.fixture(params=["openmpi", "mpich"])
def nodes_mpi_user(request: pytest.FixtureRequest, mpi_available: None,
                   node_user: User, tmp_path: Path) -> User:
    """node_user with `mpirun` reaching the bed's nodes: Open MPI, or MPICH's Hydra."""
    assert node_user.bed is not None
    if request.param == "openmpi":
        node_user.extra_env.update(across_nodes_env(node_user.bed))
    elif not MPICH_MPIRUN.exists():
        pytest.skip(f"no {MPICH_MPIRUN} (apt-get install mpich)")
    else:
        node_user.extra_env.update(mpich_env(node_user.bed, tmp_path / "mpich-bin"))
    return node_user


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
def test_mpirun_across_the_nodes(nodes_mpi_user: User) -> None:
    user = nodes_mpi_user
    assert user.bed is not None
    hostfile = str(user.hostfile("node1", "node2", "node3"))
    spec = user.start("--launcher", "mpi", "--hostfile", hostfile, "--interface", "eth0")
    result = user.compute(spec)
    assert result["hostnames"] == ["node1", "node2", "node3"]
    assert sorted(w.split("://")[1].rsplit(":", 1)[0] for w in result["workers"]) == sorted(
        node.address for node in user.bed.nodes)
    # each agent was placed on the node it serves: the worker named node2-0 runs on node2
    assert result["placement"] == {"node1-0": "node1", "node2-0": "node2", "node3-0": "node3"}
    assert user.dask("stop").returncode == 0
    assert user.leftovers() == {}



@pytest.mark.ssh_nodes
def test_open_mpi_ssh_launch_takes_the_ssh_launchers_key_exchange(mpi_available: None,
                                                                  node_user: User) -> None:
    """Open MPI's own ssh launch (plm_rsh) gets curve25519 first where OpenSSH would negotiate
    sntrup761 (75-110 ms of the starting node's CPU per node: bench/README.md)."""
    assert node_user.bed is not None
    node_user.extra_env.update(across_nodes_env(node_user.bed))
    hostfile = str(node_user.hostfile("node1", "node2"))
    node_user.start("--launcher", "mpi", "--hostfile", hostfile, "--interface", "eth0")
    mpirun = [line for line in node_user.bed.nodes[0].processes("mpirun") if " -np " in line]
    assert len(mpirun) == 1, mpirun
    kex = kex_options(tuple(shlex.split(node_user.bed.ssh_command)), "node2")
    if kex:  # OpenSSH 9.0-9.8, as on Debian 12
        assert f" --mca plm_rsh_args {' '.join(kex)} " in mpirun[0]
        assert kex[1].startswith(f"KexAlgorithms={FAST_KEX},")
    else:
        assert "plm_rsh_args" not in mpirun[0]
    assert node_user.dask("stop").returncode == 0
    assert node_user.leftovers() == {}


def test_a_configured_plm_rsh_args_is_left_to_open_mpi(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The site's or user's plm_rsh_args (environment or parameter file) is never overridden."""
    monkeypatch.delenv("OMPI_MCA_plm_rsh_args", raising=False)
    params = tmp_path / "mca-params.conf"
    params.write_text("# site settings\nbtl_tcp_if_include = eth0\n")
    monkeypatch.setenv("OMPI_MCA_mca_param_files", str(params))
    assert not mca_param_configured("plm_rsh_args", "/usr/bin/mpirun")
    params.write_text("plm_rsh_args = -o KexAlgorithms=sntrup761x25519-sha512@openssh.com\n")
    assert mca_param_configured("plm_rsh_args", "/usr/bin/mpirun")
    params.write_text("")
    monkeypatch.setenv("OMPI_MCA_plm_rsh_args", "-x")
    assert mca_param_configured("plm_rsh_args", "/usr/bin/mpirun")


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
def test_killed_supervisor_takes_mpirun_and_every_rank_down(nodes_mpi_user: User) -> None:
    user = nodes_mpi_user
    assert user.bed is not None
    hostfile = str(user.hostfile("node1", "node2", "node3"))
    spec = user.start("--launcher", "mpi", "--hostfile", hostfile)
    supervisor = json.loads((Path(spec["cluster_dir"]) / "supervisor.json").read_text())["pid"]
    os.kill(supervisor, signal.SIGKILL)
    assert user.wait_until_clean(scratch=False) == {}
    stop = user.dask("stop")  # tidies the dead cluster's state and scratch
    assert stop.returncode == 0, stop.stderr
    assert user.leftovers() == {}
