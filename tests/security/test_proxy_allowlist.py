"""The Jupyter proxy lets through localhost and exactly the nodes of the user's running clusters."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from security_helpers import stop_processes

from daskhpc.cluster.node.processes import record
from daskhpc.cluster.spec import ClusterSpec, NodeSpec
from daskhpc.cluster.state import ClusterState
from daskhpc.proxy_allowlist import allowed, cluster_hosts

SRC = Path(__file__).resolve().parents[2] / "src"


def write_cluster(
    clusters_dir: Path, cluster_id: str, nodes: list[str], scheduler_host: str, running: bool = True
) -> ClusterSpec:
    """A cluster's state as the launcher leaves it: spec.json, and the scheduler file while up."""
    cluster_dir = clusters_dir / cluster_id
    cluster_dir.mkdir(parents=True)
    spec = ClusterSpec(
        cluster_id=cluster_id, cluster_dir=str(cluster_dir), created=time.time(), launcher="ssh",
        protocol="tls", scheduler_host=scheduler_host, scheduler_port=40001, dashboard_port=40002,
        scheduler_file=str(cluster_dir / "scheduler.json"),
        nodes=tuple(NodeSpec(host, 1, 1, 0) for host in nodes),
        python="/env/bin/python", pythonpath="",
    )
    spec.write()
    if running:
        write_scheduler_file(spec)
    return spec


def write_scheduler_file(spec: ClusterSpec) -> None:
    identity = {"address": spec.scheduler_address, "daskhpc_cluster": spec.cluster_id}
    Path(spec.scheduler_file).write_text(json.dumps(identity))


@pytest.fixture
def clusters_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DASKHPC_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state" / "clusters"


def test_only_localhost_without_clusters(clusters_dir: Path) -> None:
    assert allowed(None, "localhost")
    assert allowed(None, "127.0.0.1")
    assert allowed(None, "[::1]")
    assert not allowed(None, "node1")
    assert not allowed(None, "10.0.0.1")


def test_exactly_the_nodes_of_running_clusters(clusters_dir: Path) -> None:
    write_cluster(clusters_dir, "a", ["node1", "node2"], scheduler_host="10.77.0.1")
    write_cluster(clusters_dir, "b", ["gpu7"], scheduler_host="10.77.0.9")

    for host in ("node1", "NODE2", "gpu7", "10.77.0.1", "10.77.0.9"):
        assert allowed(None, host), host
    for host in ("node3", "node1.evil.example", "10.77.0.2", "example.com", "0.0.0.0", ""):
        assert not allowed(None, host), host


def test_addresses_the_node_names_resolve_to(clusters_dir: Path) -> None:
    # "vm"-style machine names resolve through /etc/hosts; localhost is the one sure to.
    write_cluster(clusters_dir, "a", ["localhost"], scheduler_host="10.77.0.1")
    assert "127.0.0.1" in cluster_hosts()


def test_stopped_replaced_and_dead_clusters_are_refused(clusters_dir: Path) -> None:
    write_cluster(clusters_dir, "never-up", ["node4"], "10.77.0.4", running=False)
    stopped = write_cluster(clusters_dir, "stopped", ["node5"], "10.77.0.5")
    ClusterState(Path(stopped.cluster_dir)).mark_stopped()
    replaced = write_cluster(clusters_dir, "replaced", ["node6"], "10.77.0.6")
    # A newer cluster wrote the same scheduler file: the old cluster's nodes are no longer ours.
    Path(replaced.scheduler_file).write_text(json.dumps({"daskhpc_cluster": "someone-else"}))
    # Its supervisor (the scheduler) died without stop: our PID, but another start time.
    crashed = write_cluster(clusters_dir, "crashed", ["node7"], "10.77.0.7")
    me = record(os.getpid(), "supervisor")
    assert me is not None
    ClusterState(Path(crashed.cluster_dir)).write_supervisor(
        dataclasses.replace(me, start_time=me.start_time + 1)
    )
    (clusters_dir / "half-written").mkdir()
    live = write_cluster(clusters_dir, "live", ["node8"], "10.77.0.8")
    ClusterState(Path(live.cluster_dir)).write_supervisor(me)

    for host in ("node4", "10.77.0.4", "node5", "10.77.0.5", "node6", "node7", "10.77.0.7"):
        assert not allowed(None, host), host
    assert allowed(None, "node8")


def _outward_address() -> str | None:
    """One of this machine's non-loopback IPv4 addresses, if it has any."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    return None


def _start(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as stream:
        return subprocess.Popen(argv, stdout=stream, stderr=subprocess.STDOUT, env=env)


def _wait(condition: Callable[[], bool], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{process.args[:3]} did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _get(url: str, token: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def _json(path: Path) -> dict[str, Any] | None:
    """The file's JSON once it is complete (distributed writes its scheduler file in place)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_real_jupyter_server_proxies_to_cluster_dashboard_only(
    clusters_dir: Path, tmp_path: Path
) -> None:
    """jupyter server + jupyter-server-proxy with our allow-list, a real scheduler dashboard on
    this machine's outward address: that host is proxied, another reachable host is refused."""
    address = _outward_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to stand for a node")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
    }
    scheduler_file = tmp_path / "scheduler.json"
    processes = [_start(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", address, "--port", "0",
         "--dashboard-address", ":0", "--scheduler-file", str(scheduler_file)],
        tmp_path / "scheduler.log", env,
    )]
    try:
        token = secrets.token_hex(16)
        jupyter_port = free_port()
        config = tmp_path / "jupyter_server_config.py"
        config.write_text(
            "from daskhpc.proxy_allowlist import allowed\n"
            "c.ServerProxy.host_allowlist = allowed\n"
            f"c.IdentityProvider.token = {token!r}\n"
        )
        processes.append(_start(
            [sys.executable, "-m", "jupyter_server", f"--config={config}", "--ip=127.0.0.1",
             f"--port={jupyter_port}", "--port-retries=0", "--no-browser",
             f"--ServerApp.root_dir={tmp_path}", *(["--allow-root"] if os.geteuid() == 0 else []),
             ],
            tmp_path / "jupyter.log", env,
        ))
        _wait(lambda: _json(scheduler_file) is not None, processes[0], tmp_path / "scheduler.log")
        scheduler = _json(scheduler_file)
        assert scheduler is not None
        dashboard_port = scheduler["services"]["dashboard"]
        spec = write_cluster(clusters_dir, "live", ["nodeless"], scheduler_host=address)
        _wait(lambda: _listening(jupyter_port), processes[1], tmp_path / "jupyter.log")

        def proxied(host: str) -> tuple[int, str]:
            return _get(f"http://127.0.0.1:{jupyter_port}/proxy/{host}:{dashboard_port}/status",
                        token)

        status, body = proxied(address)
        assert status == 200, body[:500]
        assert "Dask" in body
        # Reachable (the dashboard listens on every interface), but not a node of a cluster.
        status, body = proxied("127.0.0.2")
        assert status == 403, body[:500]
        # The cluster ended (its scheduler file is gone): its node is refused from now on.
        Path(spec.scheduler_file).unlink()
        status, body = proxied(address)
        assert status == 403, body[:500]
    finally:
        stop_processes(processes)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
