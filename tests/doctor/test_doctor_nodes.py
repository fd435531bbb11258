"""The doctor on three simulated nodes: silent when all is well; each thing broken for real on
one node is named in one line with its fix and the right exit code, and nothing is left running.

Breakages are made in the broken node's own mount namespace, cgroup or firewall (see
doctor_helpers), so the other nodes stay healthy and each test undoes what it did.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from doctor_helpers import (
    PYTHON,
    doctor,
    doctor_json,
    in_node_mounts,
    mounted,
    own_memory_cgroup,
    run,
    sshd_pid,
)
from testbed.mpi import across_nodes_env
from testbed.mpi import missing_requirements as mpi_missing
from testbed.nodes import NodeBed

pytestmark = pytest.mark.ssh_nodes


def test_all_well_is_all_ok_and_fast(bed: NodeBed, home: Path) -> None:
    began = time.monotonic()
    report = doctor(bed, home)
    took = time.monotonic() - began
    assert report.returncode == 0, report.stdout + report.stderr
    assert report.lines("problem") == [] and report.lines("warning") == []
    checks = [line.split(":")[0].split(None, 1)[1] for line in report.lines("ok")]
    assert checks == ["batch system", "node names", "remote start", "environment", "network",
                      "scratch", "memory", "limits", "scheduler file", "certificates"]
    assert "--hosts node1,node2,node3: 3 node(s) node[1-3]" in report.stdout
    assert f"listen on {bed.nodes[0].address} (eth0, the route to node2)" in report.stdout
    assert "no problem found" in report.stderr
    # Seconds of wall time, most of it waiting: ssh handshakes and Python starts on a machine
    # shared by many test runs (about 2 s on a quiet one); the bound only catches a hang.
    assert took < 30, took
    data = doctor_json(bed, home)
    assert (data["problems"], data["warnings"]) == (0, 0)
    assert {item["status"] for item in data["checks"]} == {"ok"}
    assert not list(home.rglob(".doctor-*"))  # the token is gone


def test_missing_key_on_one_node(bed: NodeBed, home: Path) -> None:
    empty = bed.workdir / "no_keys"
    empty.write_text("")
    keys = str(bed.workdir / "authorized_keys")
    with mounted(bed.nodes[1], "mount", "--bind", str(empty), keys, target=keys):
        report = doctor(bed, home)
    assert report.returncode == 1
    line = report.only("problem", "remote start")
    assert "node2: ssh does not accept your key" in line and "Permission denied" in line
    assert "fix: ssh-keygen -t ed25519" in line and "ssh-copy-id" in line


def test_unknown_host_keys(bed: NodeBed, home: Path) -> None:
    """An ssh client that checks host keys and knows none of the nodes'."""
    config = bed.workdir / "strict_ssh_config"
    config.write_text(re.sub(r"StrictHostKeyChecking no|UserKnownHostsFile /dev/null",
                             lambda m: "StrictHostKeyChecking yes" if "Strict" in m[0] else
                             f"UserKnownHostsFile {bed.workdir / 'empty_known_hosts'}",
                             bed.ssh_config.read_text()))
    report = doctor(bed, home, DASKHPC_SSH=f"ssh -F {config}")
    assert report.returncode == 1
    line = report.only("problem", "remote start")
    assert "node[2-3]: this node does not know the node's host key" in line
    assert "fix: compare the fingerprint" in line and "ssh-keyscan" in line


def test_environment_missing_on_one_node(bed: NodeBed, home: Path) -> None:
    env = str(Path(PYTHON).parent.parent)  # the environment's prefix, hidden on node3
    with mounted(bed.nodes[2], "mount", "-t", "tmpfs", "-o", "size=1m", "hidden", env,
                 target=env):
        report = doctor(bed, home)
    assert report.returncode == 1
    line = report.only("problem", "environment")
    assert f"node3: {PYTHON} does not exist there" in line
    assert "fix: install the environment once on a filesystem every node mounts" in line


def test_state_directory_not_shared_with_one_node(bed: NodeBed, home: Path) -> None:
    state = home / ".local" / "state"
    state.mkdir(parents=True)
    with mounted(bed.nodes[1], "mount", "-t", "tmpfs", "-o", "size=1m", "private", str(state),
                 target=str(state)):
        report = doctor(bed, home)
    assert report.returncode == 1
    line = report.only("problem", "environment")
    assert (f"node2: the state directory {state / 'daskhpc'} is not shared with this node (a "
            "file written here: No such file or directory there)") in line
    assert "fix: set DASKHPC_STATE_DIR to a directory on a filesystem every node shares" in line


@pytest.fixture
def fabric(bed: NodeBed):
    """ib0 (a second bridge, no default route, like an IB fabric) on the nodes asked for."""
    bridge = f"dhi{bed.subnet}"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    added: list[str] = []

    def give_ib0(indexes: list[int]) -> None:
        for index in indexes:
            node, veth = bed.nodes[index], f"dh{bed.subnet}i{index + 1}"
            address = f"10.78.{bed.subnet}.{node.address.rsplit('.', 1)[1]}/24"
            for argv in (["link", "add", veth, "type", "veth", "peer", "name", "ib0", "netns",
                          node.netns], ["link", "set", veth, "master", bridge, "up"],
                         ["-n", node.netns, "addr", "add", address, "dev", "ib0"],
                         ["-n", node.netns, "link", "set", "ib0", "up"]):
                subprocess.run(["ip", *argv], check=True)
            added.append(veth)

    try:
        yield give_ib0
    finally:
        for veth in added:
            subprocess.run(["ip", "link", "del", veth], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def test_one_node_without_ib0(bed: NodeBed, home: Path, fabric) -> None:
    fabric([0, 1])
    report = doctor(bed, home)
    assert report.returncode == 0  # it works, on the slower network
    line = report.only("warning", "network")
    assert (f"node3: no ib0 there, while this node has one: the cluster falls back to "
            f"{bed.nodes[0].address} (eth0)") in line
    assert "fix: leave those nodes out to use ib0, or --interface eth0" in line
    missing = doctor(bed, home, "--interface", "ib0")
    assert missing.returncode == 1
    assert "node3: no interface ib0 with an IPv4 address (it has eth0, lo)" in \
        missing.only("problem", "network")


def test_return_path_blocked_on_one_node(bed: NodeBed, home: Path) -> None:
    node2, head = bed.nodes[1], bed.nodes[0].address
    # new TCP connections from node2 to the head node are dropped; ssh into node2 still works
    rules = (f"table inet dhdoctor {{\n chain out {{\n  type filter hook output priority 0;\n"
             f"  ip daddr {head} tcp flags & (syn | ack) == syn drop\n }}\n}}\n")
    subprocess.run(["ip", "netns", "exec", node2.netns, "nft", "-f", "-"], input=rules,
                   text=True, check=True)
    try:
        report = doctor(bed, home)
    finally:
        subprocess.run(["ip", "netns", "exec", node2.netns, "nft", "delete", "table", "inet",
                        "dhdoctor"], check=True)
    assert report.returncode == 1
    line = report.only("problem", "network")
    assert f"node2: cannot open a TCP connection back to the scheduler's address {head}:" in line
    assert "no answer within 3 s: dropped on the way" in line
    assert f"fix: have the firewall (on those nodes or between them) let TCP from the nodes " \
        f"reach {head} on any port" in line


def test_local_directory_on_fuse_on_one_node(bed: NodeBed, home: Path) -> None:
    scratch = home / "scratch"
    scratch.mkdir()
    source = home / "fuse-source"
    source.mkdir()
    with mounted(bed.nodes[1], "bindfs", str(source), str(scratch), target=str(scratch)):
        report = doctor(bed, home, "--local-directory", str(scratch))
    assert report.returncode == 1
    line = report.only("problem", "scratch")
    assert f"node2: {scratch} is on fuse" in line and "Could not acquire workspace lock" in line
    assert "fix: --local-directory DIR on a node-local disk" in line


def test_memory_above_one_nodes_cgroup_limit(bed: NodeBed, home: Path) -> None:
    parent = own_memory_cgroup()
    if parent is None:
        pytest.skip("needs the cgroup v1 memory controller at /sys/fs/cgroup/memory")
    node2 = bed.nodes[1]
    pid = sshd_pid(node2)
    group = parent / f"daskhpc-doctor-{bed.subnet}"
    group.mkdir()
    (group / "memory.limit_in_bytes").write_text(str(300 * 2**20))
    (group / "cgroup.procs").write_text(str(pid))  # node2's ssh sessions start in it
    cgroups = "/sys/fs/cgroup"
    try:  # node2's /sys is its own (ip netns exec): give it the memory hierarchy to read
        in_node_mounts(node2, "mount", "-t", "tmpfs", "cgroups", cgroups)
        in_node_mounts(node2, "mkdir", f"{cgroups}/memory")
        in_node_mounts(node2, "mount", "-t", "cgroup", "-o", "memory", "memory",
                       f"{cgroups}/memory")
        report = doctor(bed, home)
    finally:
        in_node_mounts(node2, "umount", "-R", "-l", cgroups)
        (parent / "cgroup.procs").write_text(str(pid))
        group.rmdir()
    assert report.returncode == 1
    line = report.only("problem", "memory")
    assert "node2: 1 worker(s) x" in line and "but the node allows 0.29 GiB (its cgroup limit)" \
        in line
    assert "fix: --memory-limit 270MiB" in line


def test_stale_scheduler_file(bed: NodeBed, home: Path) -> None:
    stale = home / "dask-scheduler.json"
    stale.write_text(json.dumps({"address": "tls://127.0.0.1:9", "daskhpc_cluster": "gone"}))
    report = doctor(bed, home)
    assert report.returncode == 0  # start replaces it
    line = report.only("warning", "scheduler file")
    assert f"{stale} is stale: its scheduler (tls://127.0.0.1:9) is gone" in line
    assert stale.exists()  # the doctor changes nothing


def test_failed_start_names_the_node_in_one_line_and_the_doctor(bed: NodeBed,
                                                                 home: Path) -> None:
    """A local directory that works here but is read-only on node3: start fails with one line
    from node3 (no traceback) and the doctor command that finds it."""
    scratch = home / "scratch"
    scratch.mkdir()
    with mounted(bed.nodes[2], "mount", "-t", "tmpfs", "-o", "ro,size=1m", "ro", str(scratch),
                 target=str(scratch)):
        start = run(bed, home, "start", "--hosts", "node[1-3]", "--local-directory",
                    str(scratch), "--timeout", "30")
        report = doctor(bed, home, "--local-directory", str(scratch))
    assert start.returncode == 1
    assert "Traceback" not in start.stderr
    assert re.search(r"node node3 failed; end of its log:\n\s+daskhpc agent on node3: cannot "
                     r"create the worker directory .* \(Read-only file system\); give "
                     r"--local-directory", start.stderr), start.stderr
    assert (f"to find the cause: dask-cluster-doctor --hosts 'node[1-3]' --local-directory "
            f"{scratch}") in start.stderr
    line = report.only("problem", "scratch")
    assert "node3: worker directories cannot be made" in line and "Read-only" in line


@pytest.mark.mpi
def test_mpirun_across_the_nodes(bed: NodeBed, home: Path) -> None:
    reason = mpi_missing()
    if reason:
        pytest.skip(reason)
    report = doctor(bed, home, "--launcher", "mpi", **across_nodes_env(bed))
    assert report.returncode == 0, report.stdout
    assert ("launcher mpi (asked for with --launcher): mpirun starts a process on every node"
            in report.stdout)
