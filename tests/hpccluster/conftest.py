"""The HPCCluster tests' user: its kernel runs inside node1 of the simulated allocation, as a
Jupyter server on a compute node runs it (batchspawner), and starts clusters across all three."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hpc_user import PythonUser
from testbed.install import DaskInstall, user_environment
from testbed.nodes import NodeBed


@pytest.fixture
def python_user(dask_install: DaskInstall, node_bed: NodeBed,
                tmp_path: Path) -> Iterator[PythonUser]:
    home = tmp_path / "home"
    home.mkdir()
    env = {**user_environment(home, [dask_install.bin_dir]), "DASKHPC_SSH": node_bed.ssh_command}
    user = PythonUser(dask_install, node_bed, home, env)
    user.hostfile.write_text("node1\nnode2\nnode3\n")
    yield user
    leftovers = [info["id"] for info in user.status()]
    for cluster_id in leftovers:
        user.command("stop-dask-cluster", cluster_id)
    assert leftovers == [], "a test left its cluster running"
