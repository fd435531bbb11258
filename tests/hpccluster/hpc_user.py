"""The user of the HPCCluster tests: an installed environment, a home on the shared filesystem,
a kernel (or Jupyter server) inside node1 of three simulated nodes, the CLI beside it."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernel_session import KernelSession, run_command
from testbed.install import DaskInstall
from testbed.nodes import Node, NodeBed
from testbed.scratch import cluster_ids, scratch_left


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

    def kernel(self, **extra_env: str) -> KernelSession:
        return KernelSession(self.install, {**self.env, **extra_env}, self.node,
                             self.home / "kernels")

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

    def leftovers(self, kernel: int = 0) -> dict[str, list[str]]:
        """The environment's processes on the nodes but the kernel, and the scratch directories
        of this user's clusters, by node (none expected)."""
        found = {host: left for host, lines in self.bed.processes(str(self.install.prefix)).items()
                 if (left := [line for line in lines if int(line.split()[0]) != kernel])}
        for place, directories in scratch_left(cluster_ids(self.home)).items():
            found.setdefault(place, []).extend(directories)
        return found
