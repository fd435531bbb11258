"""Automatic network choice on the simulated nodes: ib0 when every node has it, else the route.

An "InfiniBand" network here is a second bridge with a veth named ib0 in each node; the nodes
reach each other over it, and it carries no default route, like a real IB fabric.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest
from cluster_helpers import User
from testbed.nodes import Node, NodeBed

pytestmark = pytest.mark.ssh_nodes


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def ib_address(bed: NodeBed, node: Node) -> str:
    return f"10.78.{bed.subnet}.{node.address.rsplit('.', 1)[1]}"


@pytest.fixture
def fabric(node_bed: NodeBed) -> Iterator[Callable[[list[Node]], None]]:
    """Gives ib0 to the nodes asked for; removes the whole fabric afterwards."""
    bridge = f"dhi{node_bed.subnet}"
    ip("link", "add", bridge, "type", "bridge")
    ip("link", "set", bridge, "up")
    added: list[str] = []

    def give_ib0(nodes: list[Node]) -> None:
        for node in nodes:
            veth = f"dh{node_bed.subnet}i{node.hostname[-1]}"
            ip("link", "add", veth, "type", "veth", "peer", "name", "ib0", "netns", node.netns)
            added.append(veth)
            ip("link", "set", veth, "master", bridge, "up")
            ip("-n", node.netns, "addr", "add", f"{ib_address(node_bed, node)}/24", "dev", "ib0")
            ip("-n", node.netns, "link", "set", "ib0", "up")

    try:
        yield give_ib0
    finally:
        for veth in added:  # deleting one end of a veth pair deletes the node's ib0 too
            subprocess.run(["ip", "link", "del", veth], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def worker_ips(user: User, spec: dict) -> list[str]:
    return sorted(address.split("://")[1].rsplit(":", 1)[0]
                  for address in user.compute(spec)["workers"])


def test_ib0_on_every_node_is_preferred(node_user: User, fabric):
    bed = node_user.bed
    fabric(bed.nodes)
    spec = node_user.start("--hostfile", str(node_user.hostfile("node1", "node2", "node3")))
    assert spec["scheduler_host"] == ib_address(bed, bed.nodes[0])
    assert worker_ips(node_user, spec) == sorted(ib_address(bed, node) for node in bed.nodes)
    assert node_user.dask("stop").returncode == 0
    assert node_user.leftovers() == {}


def test_ib0_missing_on_one_node_falls_back_to_the_shared_route(node_user: User, fabric):
    bed = node_user.bed
    fabric(bed.nodes[:2])
    spec = node_user.start("--hostfile", str(node_user.hostfile("node1", "node2", "node3")))
    assert spec["scheduler_host"] == bed.nodes[0].address
    assert worker_ips(node_user, spec) == sorted(node.address for node in bed.nodes)
    assert node_user.dask("stop").returncode == 0


def test_interface_option_is_used_by_scheduler_and_workers(node_user: User, fabric):
    bed = node_user.bed
    fabric(bed.nodes)
    spec = node_user.start("--hostfile", str(node_user.hostfile("node1", "node2", "node3")),
                           "--interface", "eth0")
    assert spec["scheduler_host"] == bed.nodes[0].address
    assert worker_ips(node_user, spec) == sorted(node.address for node in bed.nodes)
    assert node_user.dask("stop").returncode == 0
