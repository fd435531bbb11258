"""A notebook run cell by cell on the installed kernel (nbclient), so a test can look at the
nodes between cells, as a user would between two cells of their notebook."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Optional

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from testbed.install import DaskInstall
from testbed.nodes import Node


def kernel_on_node(install: DaskInstall, node: Node, kernels_dir: Path) -> str:
    """A kernel spec running the installed kernel inside `node` (its network, hostname and
    /etc/hosts), as a Jupyter server on a compute node runs it; returns its name."""
    spec = json.loads((install.kernel_dir / "kernel.json").read_text())
    spec["argv"] = node.command(spec["argv"])
    name = f"{install.kernel_name}-{node.hostname}"
    (kernels_dir / name).mkdir(parents=True, exist_ok=True)
    (kernels_dir / name / "kernel.json").write_text(json.dumps(spec))
    return name


class KernelSession:
    def __init__(self, install: DaskInstall, env: dict[str, str], node: Node,
                 kernels_dir: Path, timeout: int = 240) -> None:
        self.notebook = nbformat.v4.new_notebook()
        self.kernel = KernelManager(
            kernel_name=kernel_on_node(install, node, kernels_dir),
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels_dir)]),
            # Unix sockets on the shared filesystem: the kernel's network is the node's.
            transport="ipc", ip=str(kernels_dir / f"ipc-{os.urandom(4).hex()}"),
        )
        self.client = NotebookClient(self.notebook, km=self.kernel, timeout=timeout)
        self.env = env
        self._context: Any = None

    def __enter__(self) -> KernelSession:
        self._context = self.client.setup_kernel(env=self.env, cwd=self.env["HOME"])
        self._context.__enter__()
        return self

    def __exit__(self, kind: Optional[type], error: Optional[BaseException],
                 trace: Optional[TracebackType]) -> None:
        self._context.__exit__(kind, error, trace)
        if self.kernel.has_kernel:
            self.kernel.shutdown_kernel(now=True)

    def run(self, source: str) -> str:
        """Execute one cell; its stdout. A cell that raises fails the test with its traceback."""
        cell = nbformat.v4.new_code_cell(source)
        self.notebook.cells.append(cell)
        self.client.execute_cell(cell, len(self.notebook.cells) - 1)
        return "".join(output.get("text", "") for output in cell.outputs
                       if output.output_type == "stream" and output.name == "stdout")

    def value(self, source: str) -> Any:
        """Execute a cell whose last printed line is JSON; that value."""
        return json.loads(self.run(source).strip().splitlines()[-1])

    @property
    def pid(self) -> int:
        return int(self.kernel.provisioner.process.pid)  # type: ignore[union-attr]

    def kill(self) -> None:
        """SIGKILL, as the out-of-memory killer or a crashed node would: no clean-up runs."""
        os.kill(self.pid, signal.SIGKILL)
        self.kernel.provisioner.process.wait()  # type: ignore[union-attr]


def run_command(env: dict[str, str], argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)


def recorded_pids(cluster_dir: Path) -> dict[str, set[int]]:
    """Per node, the PIDs its agent's record file lists."""
    found = {}
    for path in (cluster_dir / "procs").glob("*.json"):
        found[path.stem] = {item["pid"] for item in json.loads(path.read_text())["records"]}
    return found


def wait_for(condition: Any, limit: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {limit} s")
        time.sleep(0.2)
