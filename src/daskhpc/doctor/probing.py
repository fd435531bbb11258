"""Run the probe on every node at once, through the launcher the cluster would use.

Before the probes run, this node listens on each of its IPv4 addresses (the scheduler will
listen on one of them, chosen only once the nodes' interfaces are known) and writes a token in
the state directory; each probe tries to connect to every listener and to read the token. Both
are gone when `probe_nodes` returns.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import psutil

import daskhpc
from daskhpc import paths
from daskhpc.cluster.allocation import Allocation
from daskhpc.cluster.launchers.base import Launcher
from daskhpc.cluster.network import is_this_machine
from daskhpc.cluster.spec import ClusterSpec, NodeSpec, write_private

PROBE_MODULE = "daskhpc.doctor.probe"
CONNECT_TIMEOUT = 3.0  # seconds a probe waits for a TCP connection back to this node
PROBE_TIMEOUT = 30.0  # seconds for a whole probe, ssh's own connect timeout (10 s) included
MAX_PARALLEL = 64  # probes running at once


@dataclass(frozen=True)
class NodeReport:
    """What running the probe on one node gave."""

    host: str
    returncode: Optional[int]  # None: no answer within PROBE_TIMEOUT
    stderr: str
    facts: Optional[dict[str, Any]]  # the probe's report; None when it did not run through

    @property
    def last_error(self) -> str:
        lines = [line.strip() for line in self.stderr.replace("\r", "").splitlines()
                 if line.strip()]
        return lines[-1] if lines else f"exit code {self.returncode}, no message"


def reaching_spec(allocation: Allocation, launcher: str) -> ClusterSpec:
    """A spec that only lets a launcher run short commands on the nodes (run_on_node)."""
    nodes = tuple(NodeSpec(node.host, 1, 1, 0, is_this_machine(node.host))
                  for node in allocation.nodes)
    return ClusterSpec(
        cluster_id="doctor", cluster_dir=str(paths.clusters_dir() / "doctor"), created=0.0,
        launcher=launcher, protocol="tcp", scheduler_host="127.0.0.1", scheduler_port=0,
        dashboard_port=0, scheduler_file="", nodes=nodes, python=sys.executable,
        pythonpath=str(Path(daskhpc.__file__).resolve().parents[1]),
    )


@contextlib.contextmanager
def listeners(backlog: int) -> Iterator[dict[str, int]]:
    """A listening TCP socket on each IPv4 address of this node: address -> port."""
    sockets: dict[str, socket.socket] = {}
    try:
        for addresses in psutil.net_if_addrs().values():
            for address in addresses:
                if address.family != socket.AF_INET or address.address in sockets:
                    continue
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets[address.address] = listener
                listener.bind((address.address, 0))
                listener.listen(backlog)  # the kernel completes connections; none is accepted
        yield {address: int(s.getsockname()[1]) for address, s in sockets.items()}
    finally:
        for listener in sockets.values():
            listener.close()


@contextlib.contextmanager
def token_file() -> Iterator[tuple[Path, str]]:
    """A random token in the state directory, which every node must see (shared filesystem)."""
    made = [p for p in [paths.state_dir(), *paths.state_dir().parents] if not p.exists()]
    paths.state_dir().mkdir(mode=0o700, parents=True, exist_ok=True)
    path = paths.state_dir() / f".doctor-{secrets.token_hex(6)}"
    token = secrets.token_hex(16)
    try:
        write_private(path, token)
        yield path, token
    finally:
        path.unlink(missing_ok=True)
        for directory in made:  # leave no trace when this made the state directory
            with contextlib.suppress(OSError):
                directory.rmdir()


def _run(launcher: Launcher, host: str, argv: list[str]) -> NodeReport:
    try:
        result = launcher.run_on_node(host, argv, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return NodeReport(host, None, f"no answer within {PROBE_TIMEOUT:g} s", None)
    except OSError as error:  # the launcher's own command is missing
        return NodeReport(host, 127, str(error), None)
    facts = None
    for row in reversed(result.stdout.splitlines()):
        with contextlib.suppress(ValueError):
            facts = json.loads(row)
            break
    return NodeReport(host, result.returncode, result.stderr, facts)


def probe_nodes(launcher: Launcher, local_directory: Optional[str]) -> tuple[
        dict[str, NodeReport], dict[str, int]]:
    """Every node's report, and the listeners (address -> port) the probes tried."""
    hosts = [node.host for node in launcher.spec.nodes]
    with listeners(backlog=len(hosts) + 16) as targets, token_file() as (token_path, token):
        request = json.dumps({
            "token_file": str(token_path), "token": token, "local_directory": local_directory,
            "targets": sorted(targets.items()), "connect_timeout": CONNECT_TIMEOUT,
        })
        argv = [launcher.spec.python, "-m", PROBE_MODULE, request]
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(hosts))) as pool:
            futures = {host: pool.submit(_run, launcher, host, argv) for host in hosts}
            return {host: future.result() for host, future in futures.items()}, targets
