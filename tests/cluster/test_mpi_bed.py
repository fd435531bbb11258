"""mpirun works on one host and across the simulated nodes (the MPI launcher's ground)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from testbed.mpi import across_nodes_env, run_as_root_env, write_hostfile
from testbed.nodes import NodeBed

pytestmark = pytest.mark.mpi


def test_mpirun_on_one_host(mpi_available: None) -> None:
    result = subprocess.run(["mpirun", "--oversubscribe", "-np", "3", "hostname"],
                            env={**os.environ, **run_as_root_env()}, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == 3


@pytest.mark.ssh_nodes
def test_mpirun_across_the_nodes(mpi_available: None, node_bed: NodeBed,
                                 tmp_path: Path) -> None:
    hostfile = write_hostfile(node_bed, tmp_path / "hosts")
    result = node_bed.nodes[0].run(
        ["mpirun", "-np", "3", "--hostfile", str(hostfile), "--map-by", "node", "hostname"],
        env={**os.environ, **across_nodes_env(node_bed)}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["node1", "node2", "node3"]
