"""The Jupyter proxy lets through localhost and exactly the nodes of the user's running clusters."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from daskhpc.cluster.spec import ClusterSpec, NodeSpec
from daskhpc.proxy_allowlist import allowed, cluster_hosts


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
        Path(spec.scheduler_file).write_text(json.dumps({"address": spec.scheduler_address}))
    return spec


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
    assert "127.0.0.1" in cluster_hosts(clusters_dir)


def test_stopped_and_replaced_clusters_are_refused(clusters_dir: Path) -> None:
    stopped = write_cluster(clusters_dir, "old", ["node5"], "10.77.0.5", running=False)
    replaced = write_cluster(clusters_dir, "older", ["node6"], "10.77.0.6")
    # A newer cluster wrote the same scheduler file: the old cluster's nodes are no longer ours.
    Path(replaced.scheduler_file).write_text(json.dumps({"address": "tls://10.77.0.7:1"}))
    (clusters_dir / "half-written").mkdir()

    assert not allowed(None, "node5")
    assert not allowed(None, stopped.scheduler_host)
    assert not allowed(None, "node6")
    assert not allowed(None, "10.77.0.6")
