"""A user of the installed environment whose kernel runs outside three simulated nodes (as on a
login node or a JupyterHub server) and makes HPCCluster objects across them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kernel_session import KernelSession, run_command
from testbed.install import DaskInstall, user_environment
from testbed.nodes import Node, NodeBed


@dataclass(frozen=True)
class PythonUser:
    install: DaskInstall
    bed: NodeBed
    home: Path
    env: dict[str, str]

    @property
    def hostfile(self) -> Path:
        return self.home / "hostfile"

    @property
    def node(self) -> Node:
        """Where the user's kernel (or Jupyter server) runs: node1 of the allocation."""
        return self.bed.nodes[0]

    def kernel(self) -> KernelSession:
        return KernelSession(self.install, self.env, self.node, self.home / "kernels")

    def command(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        """start-dask-cluster, stop-dask-cluster, dask-cluster-status as this user, on node1."""
        return run_command(self.env, self.node.command([str(self.install.wrapper(program)),
                                                        *args]))

    def status(self) -> list[dict[str, Any]]:
        result = self.command("dask-cluster-status", "--all", "--json")
        assert result.returncode == 0, result.stderr
        return list(json.loads(result.stdout))

    def cluster_dirs(self) -> list[Path]:
        return sorted((self.home / ".local" / "state" / "daskhpc" / "clusters").glob("*-*"))

    def processes(self, kernel: int = 0) -> dict[str, list[str]]:
        """The environment's processes on the nodes but the kernel, by node (none expected)."""
        found = self.bed.processes(str(self.install.prefix))
        return {host: left for host, lines in found.items()
                if (left := [line for line in lines if int(line.split()[0]) != kernel])}


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
