"""--launcher auto: which launcher is chosen, and the reason printed with it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cluster_helpers import PYTHON, User

from daskhpc.cluster.batch.base import Allocation, Node
from daskhpc.cluster.launchers import choose
from daskhpc.errors import DaskhpcError

NODES = (Node("node1", 2, 2, None), Node("node2", 2, 2, None))


def test_inside_a_slurm_job_srun_is_chosen() -> None:
    if shutil.which("srun") is None:
        pytest.skip("srun is not installed (apt-get install slurm-client)")
    name, why = choose("auto", Allocation("slurm", NODES, "77"), {"SLURM_JOB_ID": "77"})
    assert (name, why) == ("srun", "inside Slurm job 77: one srun step on its nodes")


def test_a_slurm_nodelist_without_a_job_uses_ssh() -> None:
    name, why = choose("auto", Allocation("slurm", NODES), {})
    assert (name, why) == ("ssh", "slurm allocation of 2 node(s)")


@pytest.mark.parametrize("kind", ["pbs", "lsf", "sge", "hostfile", "hosts"])
def test_other_allocations_use_ssh(kind: str) -> None:
    assert choose("auto", Allocation(kind, NODES), {})[0] == "ssh"


def test_no_allocation_runs_here() -> None:
    assert choose("auto", Allocation("none", NODES[:1]), {}) == (
        "local", "no allocation found: this machine only")


def test_site_setting_asks_for_mpi() -> None:
    environ = {"DASKHPC_LAUNCHER": "mpi", "SLURM_JOB_ID": "77"}
    assert choose("auto", Allocation("slurm", NODES, "77"), environ) == (
        "mpi", "set by DASKHPC_LAUNCHER (site or user setting)")


def test_explicit_choice_wins_over_the_site_setting() -> None:
    environ = {"DASKHPC_LAUNCHER": "mpi"}
    assert choose("ssh", Allocation("pbs", NODES), environ) == (
        "ssh", "asked for with --launcher")


def test_bad_site_setting_is_named() -> None:
    with pytest.raises(DaskhpcError, match="DASKHPC_LAUNCHER='pbsdsh' is not a launcher"):
        choose("auto", Allocation("pbs", NODES), {"DASKHPC_LAUNCHER": "pbsdsh"})


def test_srun_outside_a_slurm_job_is_one_clear_line(user: User) -> None:
    result = user.dask("start", "--launcher", "srun")
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "start-dask-cluster: error: the srun launcher works inside a Slurm job (no "
        "SLURM_JOB_ID); use salloc/sbatch, or --launcher ssh")
    assert user.clusters() == []  # nothing was started or left behind


def test_mpi_without_mpirun_is_one_clear_line(user: User, tmp_path: Path) -> None:
    bare = tmp_path / "bin"  # a PATH with Python but no MPI
    bare.mkdir()
    user.extra_env["PATH"] = str(bare)
    (bare / "python").symlink_to(PYTHON)
    result = user.dask("start", "--launcher", "mpi")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no mpirun or mpiexec on PATH; load your site's MPI module" in result.stderr
    assert user.clusters() == []
