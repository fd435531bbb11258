"""The remote-start check with the batch system's launchers: inside a real Slurm job (srun steps
with --overlap), and with each launcher unavailable (mpirun across the nodes: test_doctor_nodes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from doctor_helpers import PYTHON, REPO
from testbed.slurm import SlurmBed


def local_doctor(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "HOME": str(home), "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "daskhpc", "doctor", *args],
                          env={**base, **env}, capture_output=True, text=True, timeout=120)


def problems(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("problem")]


def test_srun_outside_a_job_is_one_problem(tmp_path: Path) -> None:
    result = local_doctor(tmp_path, "--launcher", "srun")
    assert result.returncode == 1
    assert problems(result.stdout) == [
        "problem  remote start:      vm: the srun launcher works inside a Slurm job (no "
        "SLURM_JOB_ID); use salloc/sbatch, or --launcher ssh".replace("vm", os.uname().nodename)]


def test_mpi_without_mpirun_is_one_problem(tmp_path: Path) -> None:
    result = local_doctor(tmp_path, "--launcher", "mpi", PATH=str(Path(sys.executable).parent))
    assert result.returncode == 1
    [line] = problems(result.stdout)
    assert "no mpirun or mpiexec on PATH; load your site's MPI module" in line


@pytest.mark.slurm
def test_inside_a_slurm_job(slurm_cluster: SlurmBed, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    script = home / "doctor.sh"
    script.write_text(f"#!/bin/sh\ncd \"$HOME\"\nexec {PYTHON} -m daskhpc doctor >out 2>err\n")
    script.chmod(0o755)
    env = {"HOME": str(home), "PYTHONPATH": str(REPO / "src"), "LANG": "C.UTF-8"}
    result = slurm_cluster.run(["salloc", "-N3", str(script)], env=env, timeout=240)
    out = (home / "out").read_text()
    assert result.returncode == 0, out + (home / "err").read_text() + result.stderr
    assert problems(out) == []
    assert "slurm job" in out and "from SLURM_JOB_NODELIST: 3 node(s) node[1-3]" in out
    assert "launcher srun (inside Slurm job" in out
    assert "srun starts a step with --overlap on every node" in out
