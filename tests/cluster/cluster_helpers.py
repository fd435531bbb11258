"""Cluster test helpers: run the commands as a user would, look at what is left running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from testbed.nodes import Node, NodeBed
from testbed.scratch import cluster_ids, scratch_left

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable  # the dev venv: the "environment" every node shares

# A client that connects with the user's client certificate, runs a computation on every worker
# and prints what a user would look at.
CLIENT_SCRIPT = """
import json, socket, sys
from pathlib import Path
from dask.distributed import Client
info = json.loads(Path(sys.argv[1]).read_text())
security = None
if info["address"].startswith("tls://"):
    from daskhpc.cluster.tls.user import client_tls
    security = client_tls().security("client")
with Client(info["address"], security=security, timeout=30) as client:
    workers = client.scheduler_info(n_workers=-1)["workers"]
    hostnames = client.run(socket.gethostname)
    named = client.run(lambda dask_worker: [str(dask_worker.name), socket.gethostname()])
    total = client.submit(sum, range(101)).result()
    squares = client.gather(client.map(lambda x: x * x, range(20)))
print(json.dumps({"workers": sorted(workers), "hostnames": sorted(hostnames.values()),
                  "placement": dict(named.values()), "sum": total, "squares": sum(squares)}))
"""


@dataclass
class User:
    """One user's shell: a private HOME on the shared filesystem, commands run in `node`."""

    home: Path
    bed: Optional[NodeBed] = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {"PATH": os.environ["PATH"], "HOME": str(self.home), "LANG": "C.UTF-8",
               "PYTHONPATH": str(REPO / "src"), **self.extra_env}
        if self.bed is not None:
            env["DASKHPC_SSH"] = self.bed.ssh_command
        return env

    @property
    def node(self) -> Optional[Node]:
        return self.bed.nodes[0] if self.bed is not None else None

    def argv(self, argv: list[str]) -> list[str]:
        return self.node.command(argv) if self.node is not None else argv

    def dask(self, command: str, *args: str, timeout: float = 180,
             env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
        argv = self.argv([PYTHON, "-m", "daskhpc", command, *args])
        return subprocess.run(argv, env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=timeout)

    def popen_start(self, *args: str, env: Optional[dict[str, str]] = None) -> subprocess.Popen:
        argv = self.argv([PYTHON, "-m", "daskhpc", "start", *args])
        return subprocess.Popen(argv, env={**self.env, **(env or {})}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def start(self, *args: str, env: Optional[dict[str, str]] = None) -> dict[str, Any]:
        """start-dask-cluster must succeed; returns the cluster's spec as JSON."""
        result = self.dask("start", *args, env=env)
        assert result.returncode == 0, result.stderr
        assert "Client(scheduler_file=" in result.stdout
        return self.latest_spec()

    def clusters(self) -> list[Path]:
        root = self.home / ".local" / "state" / "daskhpc" / "clusters"
        return sorted(root.iterdir()) if root.is_dir() else []

    def latest_spec(self) -> dict[str, Any]:
        specs = [json.loads((d / "spec.json").read_text()) for d in self.clusters()]
        return max(specs, key=lambda spec: spec["created"])

    def compute(self, spec: dict[str, Any]) -> dict[str, Any]:
        argv = self.argv([PYTHON, "-c", CLIENT_SCRIPT, spec["scheduler_file"]])
        result = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    def leftovers(self, nodes: Optional[list[Node]] = None) -> dict[str, list[str]]:
        return leftovers(self.bed, self.home, nodes)

    def wait_until_clean(self, timeout: float = 60, nodes: Optional[list[Node]] = None,
                         scratch: bool = True) -> dict[str, list[str]]:
        return wait_until_clean(self.bed, self.home, timeout, nodes, scratch)

    def hostfile(self, *hosts: str) -> Path:
        path = self.home / "hostfile"
        path.write_text("".join(f"{host}\n" for host in hosts))
        return path


def leftovers(bed: Optional[NodeBed], home: Path, nodes: Optional[list[Node]] = None,
              scratch: bool = True) -> dict[str, list[str]]:
    """What a user's clusters left: the environment's processes on each simulated node, and
    the clusters' scratch directories (an admin's `ls /tmp`).

    `nodes`: only these nodes' processes and agent directories; by default every node's, and
    the scheduler's directory too (key "scheduler"). `scratch=False`: processes only (what a
    kill leaves on disk is for stop-dask-cluster to remove).
    """
    found: dict[str, list[str]] = {}
    if bed is not None:
        found = {node.hostname: procs for node in (nodes or bed.nodes)
                 if (procs := node.processes(PYTHON))}
    hosts = None if nodes is None else [node.hostname for node in nodes]
    for place, directories in (scratch_left(cluster_ids(home), hosts) if scratch else {}).items():
        found.setdefault(place, []).extend(directories)
    return found


def wait_until_clean(bed: Optional[NodeBed], home: Path, timeout: float = 60,
                     nodes: Optional[list[Node]] = None,
                     scratch: bool = True) -> dict[str, list[str]]:
    """Poll until nothing of the user's clusters is left (leftovers); return what is left then.

    Teardown after a kill happens asynchronously on remote nodes (SIGHUP, death timeout), so
    tests wait for it, with a generous limit: a leftover after that is an orphan.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = leftovers(bed, home, nodes, scratch)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def recorded_alive(cluster_dir: Path) -> list[str]:
    """Recorded processes of a cluster that still run (local clusters: same host)."""
    from daskhpc.cluster.node.processes import read_records

    alive = []
    for path in (cluster_dir / "procs").glob("*.json"):
        records, _ = read_records(path)
        alive += [f"{item.role} {item.pid}" for item in records if item.alive()]
    return alive
