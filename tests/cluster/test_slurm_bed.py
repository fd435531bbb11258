"""The test Slurm itself behaves like a real cluster's: srun, salloc, sbatch and scancel."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hostlist import expand_hostlist
from testbed.slurm import SlurmBed

pytestmark = pytest.mark.slurm


def test_srun_runs_one_task_on_every_node(slurm_cluster: SlurmBed) -> None:
    result = slurm_cluster.run(["srun", "-N3", "hostname"], timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["node1", "node2", "node3"]


def test_salloc_gives_a_shell_with_the_nodelist(slurm_cluster: SlurmBed) -> None:
    script = 'echo "$SLURM_JOB_NODELIST"; srun hostname'
    result = slurm_cluster.run(["salloc", "-N2", "sh", "-c", script], timeout=60)
    assert result.returncode == 0, result.stderr
    nodelist, *hostnames = result.stdout.split()
    allocated = expand_hostlist(nodelist)  # any two free nodes, e.g. node[1-2]
    assert len(allocated) == 2
    assert sorted(hostnames) == sorted(allocated)


def test_sbatch_runs_the_script_on_the_first_node(slurm_cluster: SlurmBed,
                                                  tmp_path: Path) -> None:
    output = tmp_path / "job.out"
    result = slurm_cluster.run(["sbatch", "-N3", "--wait", f"--output={output}",
                                "--wrap", "hostname; srun hostname"], timeout=60)
    assert result.returncode == 0, result.stderr
    lines = output.read_text().split()
    assert lines[0] == "node1"
    assert sorted(lines[1:]) == ["node1", "node2", "node3"]


def test_scancel_ends_every_process_of_the_job(slurm_cluster: SlurmBed, tmp_path: Path) -> None:
    marker = f"sleep {300 + int(time.time()) % 100}.5"  # unique command line to look for
    result = slurm_cluster.run(["sbatch", "-N3", "--parsable", f"--output={tmp_path / 'o'}",
                                "--wrap", f"srun {marker}"])
    assert result.returncode == 0, result.stderr
    job = result.stdout.strip().split(";")[0]
    nodes = slurm_cluster.nodes
    deadline = time.monotonic() + 30
    while sum(len(found) for found in nodes.processes(marker).values()) < 3:
        assert time.monotonic() < deadline, f"job {job} never ran on all nodes"
        time.sleep(0.2)
    assert slurm_cluster.run(["scancel", job]).returncode == 0
    slurm_cluster.wait_jobs_gone()
    assert not any(nodes.processes(marker).values())
