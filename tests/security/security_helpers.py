"""Helpers for the security tests (a module of its own: every conftest is named `conftest`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from testbed.nodes import Node

from daskhpc.cluster.tls.material import TLSFiles

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class RunningCluster:
    tls: TLSFiles
    scheduler_file: Path
    address: str
    log_dir: Path


def wait_for_address(path: Path, process: subprocess.Popen[bytes], log: Path) -> str:
    """The scheduler's address, once its file is complete (distributed writes it in place)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return str(json.loads(path.read_text())["address"])
        except (OSError, ValueError, KeyError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"scheduler did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)


@dataclass
class Shell:
    """A user's terminal: a private HOME on the shared filesystem, commands run on `node`."""

    home: Path
    node: Optional[Node] = None
    ssh_command: Optional[str] = None  # DASKHPC_SSH, to reach the simulated nodes
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {"PATH": os.environ["PATH"], "HOME": str(self.home), "LANG": "C.UTF-8",
               "PYTHONPATH": str(SRC), **self.extra_env}
        if self.ssh_command:
            env["DASKHPC_SSH"] = self.ssh_command
        return env

    def run(self, argv: list[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
        if self.node is not None:
            argv = self.node.command(argv)
        return subprocess.run(argv, env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def daskhpc(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        """start-dask-cluster, stop-dask-cluster ... as the wrappers call them."""
        return self.run([sys.executable, "-m", "daskhpc", command, *args])

    def python(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run([sys.executable, "-c", script, *args])

    def latest_spec(self) -> dict[str, Any]:
        clusters = self.home / ".local" / "state" / "daskhpc" / "clusters"
        specs = [json.loads(path.read_text()) for path in clusters.glob("*/spec.json")]
        return max(specs, key=lambda spec: spec["created"])


def stop_processes(processes: list[subprocess.Popen[Any]]) -> None:
    """Terminate what a test started, newest first; kill whatever ignores that for 20 s."""
    for process in reversed(processes):
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
