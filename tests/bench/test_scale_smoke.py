"""bench/scale.py cannot rot: one round on one node, every variant from the login host (and our
ssh launcher from node1, its warm-up), then the table and plots into a temporary folder.
About 40 s on a quiet 2-core machine; the timeout only guards against a hang on a loaded one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from testbed.mpi import missing_requirements as mpi_missing
from testbed.nodes import missing_requirements as nodes_missing
from testbed.slurm import missing_requirements as slurm_missing

pytestmark = [pytest.mark.ssh_nodes, pytest.mark.slurm, pytest.mark.mpi]


def test_scale_one_node_every_variant(repo: Path, tmp_path: Path):
    reason = nodes_missing() or slurm_missing() or mpi_missing()
    if reason:
        pytest.skip(reason)
    results = tmp_path / "results.json"
    bench = subprocess.Popen(
        [sys.executable, str(repo / "bench" / "scale.py"), "--nodes", "1", "--rounds", "1",
         "--places", "login", "--results", str(results), "--plots", "--report-dir",
         str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, errors = bench.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        bench.terminate()  # it takes its bed down on SIGTERM
        _, errors = bench.communicate(timeout=60)
    assert bench.returncode == 0, errors[-3000:]
    runs = json.loads(results.read_text())["runs"]
    assert sorted(run["variant"] for run in runs) == sorted(
        ["ssh", "srun", "mpi", "sshcluster", "dask-mpi", "slurmrunner"])
    for run in runs:
        assert 0 < run["start"] <= run["dashboard"], run
        assert run["stop"] > 0 and run["cpu"] >= run["cpu_start"] > 0, run
    table = (tmp_path / "README.md").read_text()
    assert "| 1 | SSHCluster |" in table and "ssh / SSHCluster" in table
    for name in ("scale-start.png", "scale-stop.png", "scale-cpu.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
