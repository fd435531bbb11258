"""start/stop across simulated nodes over ssh, run from node1 as a user would; no orphans ever.

Each node is a network namespace with its own hostname and sshd (tests/testbed/nodes.py); the
nodes share the filesystem like cluster nodes share a home. After every test the node_user
fixture checks that no process of the environment is left on any node.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cluster_helpers import User

pytestmark = pytest.mark.ssh_nodes


def addresses(user: User) -> list[str]:
    assert user.bed is not None
    return sorted(node.address for node in user.bed.nodes)


def worker_ips(result: dict) -> list[str]:
    return sorted({address.split("://")[1].rsplit(":", 1)[0] for address in result["workers"]})


def test_hostfile_three_nodes(node_user: User):
    spec = node_user.start("--hostfile", str(node_user.hostfile("node1", "node2", "node3")))
    assert spec["launcher"] == "ssh"
    assert spec["scheduler_host"] == node_user.bed.nodes[0].address
    result = node_user.compute(spec)
    assert result["hostnames"] == ["node1", "node2", "node3"]
    assert worker_ips(result) == addresses(node_user)
    assert all(address.startswith("tls://") for address in result["workers"])
    assert result["sum"] == 5050

    status = json.loads(node_user.dask("status", "--json").stdout)
    assert [(n["host"], n["workers"]) for n in status["nodes"]] == [
        ("node1", 1), ("node2", 1), ("node3", 1)]

    stop = node_user.dask("stop")
    assert stop.returncode == 0, stop.stderr
    assert node_user.leftovers() == {}  # stop returns only once every node is clean


def test_slurm_nodelist_several_workers_per_node(node_user: User):
    env = {"SLURM_JOB_NODELIST": "node[1-3]", "SLURM_JOB_CPUS_PER_NODE": "2(x3)",
           "SLURM_JOB_ID": "4242"}
    spec = node_user.start("--launcher", "ssh", "--threads-per-worker", "1", env=env)
    assert [node["host"] for node in spec["nodes"]] == ["node1", "node2", "node3"]
    assert [node["workers"] for node in spec["nodes"]] == [1, 1, 1]  # sqrt(2 cores) -> 1
    result = node_user.compute(spec)
    assert result["hostnames"] == ["node1", "node2", "node3"]
    assert worker_ips(result) == addresses(node_user)
    assert node_user.dask("stop").returncode == 0
    assert node_user.leftovers() == {}


def _wait_for_progress(process: subprocess.Popen) -> None:
    """Read start's stderr until the supervisor reports progress: sessions are under way."""
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("workers connected: 0/"):
            return
    raise AssertionError(f"start ended before progress (exit {process.wait()})")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_start_killed_midway_leaves_nothing(node_user: User, signum: int):
    process = node_user.popen_start("--hostfile",
                                    str(node_user.hostfile("node1", "node2", "node3")))
    _wait_for_progress(process)
    process.send_signal(signum)
    process.communicate(timeout=120)
    assert process.returncode != 0
    assert node_user.wait_until_clean() == {}
    assert not (node_user.home / "dask-scheduler.json").exists()


def _supervisor_pid(spec: dict) -> int:
    return int(json.loads((Path(spec["cluster_dir"]) / "supervisor.json").read_text())["pid"])


def test_supervisor_and_scheduler_killed_leaves_nothing(node_user: User):
    spec = node_user.start("--hostfile", str(node_user.hostfile("node1", "node2", "node3")))
    os.kill(_supervisor_pid(spec), signal.SIGKILL)  # the scheduler runs inside it
    # The agents end their workers and remove their directories; the scheduler's stays ...
    assert node_user.wait_until_clean(nodes=node_user.bed.nodes) == {}
    assert node_user.leftovers().keys() == {"scheduler"}
    stop = node_user.dask("stop")  # cleans up the state of the dead cluster
    assert stop.returncode == 0, stop.stderr
    assert "no process of it is left" in stop.stdout
    assert node_user.leftovers() == {}  # ... until stop
    assert node_user.dask("status").returncode != 0


def test_killed_ssh_session_ends_that_node(node_user: User):
    spec = node_user.start("--hostfile", str(node_user.hostfile("node1", "node2", "node3")))
    supervisor = str(_supervisor_pid(spec))
    sessions = [line for line in node_user.bed.nodes[0].processes(" -tt ") if " node2 " in line]
    assert len(sessions) == 1, sessions
    pid = int(sessions[0].split()[0])
    assert Path(f"/proc/{pid}/stat").read_text().split()[3] == supervisor
    os.kill(pid, signal.SIGKILL)
    node2 = node_user.bed.nodes[1]
    assert node_user.wait_until_clean(nodes=[node2]) == {}
    assert node_user.leftovers().keys() == {"node1", "node3", "scheduler"}  # the rest runs
    assert node_user.dask("stop").returncode == 0
    assert node_user.leftovers() == {}


def test_two_clusters_share_the_nodes(node_user: User):
    hostfile = str(node_user.hostfile("node1", "node2", "node3"))
    first = node_user.start("--hostfile", hostfile)
    second = node_user.start("--hostfile", hostfile, "--scheduler-file",
                             str(node_user.home / "second.json"))
    assert first["cluster_id"] != second["cluster_id"]
    assert first["scheduler_port"] != second["scheduler_port"]
    assert node_user.compute(first)["hostnames"] == ["node1", "node2", "node3"]
    assert node_user.compute(second)["hostnames"] == ["node1", "node2", "node3"]

    assert node_user.dask("stop", first["cluster_id"]).returncode == 0
    # the other cluster is untouched and still computes
    assert node_user.compute(second)["sum"] == 5050
    status = json.loads(node_user.dask("status", "--json").stdout)
    assert status["id"] == second["cluster_id"] and status["workers"] == 3
    assert node_user.dask("stop").returncode == 0
    assert node_user.leftovers() == {}


def test_unreachable_node_is_named_and_min_workers_decides(node_user: User):
    bed = node_user.bed
    unreachable = bed.gateway.rsplit(".", 1)[0] + ".99"  # in the subnet, nobody there
    hostfile = str(node_user.hostfile("node1", "node2", unreachable))

    failed = node_user.dask("start", "--hostfile", hostfile)
    assert failed.returncode != 0
    assert f"node {unreachable} failed" in failed.stderr
    assert "only 2 of 3 workers connected" in failed.stderr
    assert node_user.wait_until_clean() == {}
    assert not (node_user.home / "dask-scheduler.json").exists()

    started = node_user.dask("start", "--hostfile", hostfile, "--min-workers", "2")
    assert started.returncode == 0, started.stderr
    assert "continuing with 2 of 3 workers" in started.stderr
    assert node_user.compute(node_user.latest_spec())["hostnames"] == ["node1", "node2"]
    assert node_user.dask("stop").returncode == 0


def test_stop_reaps_what_a_dead_agent_left_on_a_remote_node(node_user: User):
    spec = node_user.start("--hostfile", str(node_user.hostfile("node1", "node2", "node3")))
    records_file = Path(spec["cluster_dir"]) / "procs" / "node2.json"
    records = json.loads(records_file.read_text())["records"]
    agent = next(item["pid"] for item in records if item["role"] == "agent")
    worker = next(item["pid"] for item in records if item["role"] == "worker")
    os.kill(worker, signal.SIGSTOP)  # a hung worker: it cannot act on SIGTERM
    os.kill(agent, signal.SIGKILL)  # and nothing on node2 is left to verify its end
    stop = node_user.dask("stop")
    assert stop.returncode == 0, stop.stderr
    # Stop ends it through node2's records, by ssh ("1 leftover process(es) ended"), unless it
    # ended first: the agent's death orphans its process group, whose stopped members get SIGHUP
    # and SIGCONT (seen in 1 of about 20 runs; a worker held by ptrace died as fast, unexplained).
    assert "no process of it is left" in stop.stdout, stop.stdout
    assert node_user.leftovers() == {}


def test_vanished_node_is_noticed_and_the_rest_keeps_working(node_user: User):
    """A node that vanishes without closing its connections (power loss, a pulled cable)."""
    bed = node_user.bed
    assert bed is not None
    hostfile = str(node_user.hostfile("node1", "node2", "node3"))
    # Node3's workers, cut off, exit 10 s after losing the scheduler (instead of 60 s).
    spec = node_user.start("--hostfile", hostfile,
                           env={"DASK_DASKHPC__START__DEATH_TIMEOUT": "10"})
    node3 = bed.nodes[2]
    link = ["ip", "-n", node3.netns]
    vanished = time.monotonic()
    subprocess.run([*link, "link", "set", "eth0", "down"], check=True)
    try:
        while True:
            info = json.loads(node_user.dask("status", "--json").stdout)
            if "node3" in info["lost_nodes"]:
                break
            assert time.monotonic() - vanished < 30, f"node3 never reported lost: {info}"
            time.sleep(0.5)
        assert [(node["host"], node["workers"]) for node in info["nodes"]] == [
            ("node1", 1), ("node2", 1), ("node3", 0)]
        assert "node3 (unreachable)" in node_user.dask("status").stdout
        assert node_user.compute(spec)["hostnames"] == ["node1", "node2"]

        started = time.monotonic()
        stop = node_user.dask("stop")
        wall = time.monotonic() - started
        assert stop.returncode == 0, stop.stderr
        # Without keepalives stop waited 15 s for node3's hung session, then 10 s more for an
        # ssh that could not connect (25 s and more). Now it is a normal stop, which takes
        # 0.5 s on a quiet machine and several seconds on a heavily loaded one (as any stop).
        took = float(re.search(r"in (\d+\.\d+) s", stop.stdout).group(1))
        assert took < 15.0 and wall < 20.0, stop.stdout
        assert "not checked: node3" in stop.stdout
        assert node_user.leftovers(nodes=bed.nodes[:2]) == {}
    finally:
        subprocess.run([*link, "link", "set", "eth0", "up"], check=True)
        gateway = node3.address.rsplit(".", 1)[0] + ".254"  # as the bed set it up
        subprocess.run([*link, "route", "replace", "default", "via", gateway], check=True)
    # Back on the network, node3's workers find no scheduler and exit; its agent with them.
    assert node_user.wait_until_clean(timeout=120, nodes=[node3]) == {}


def test_a_lost_node_that_went_down_is_cleaned_by_stopping_again(node_user: User):
    """A lost node that crashed (its processes gone, its disk kept): stop cannot reach it, so its
    scratch stays; once it is back, stop-dask-cluster ID again removes it."""
    bed = node_user.bed
    assert bed is not None
    spec = node_user.start("--hostfile", str(node_user.hostfile("node1", "node2", "node3")))
    node3 = bed.nodes[2]
    link = ["ip", "-n", node3.netns]
    subprocess.run([*link, "link", "set", "eth0", "down"], check=True)
    try:
        deadline = time.monotonic() + 30
        while "node3" not in json.loads(node_user.dask("status", "--json").stdout)["lost_nodes"]:
            assert time.monotonic() < deadline, "node3 never reported lost"
            time.sleep(0.5)
        assert "not checked: node3" in node_user.dask("stop").stdout
        # The crash: node3's processes end without a word (SIGKILL), their files stay.
        records = json.loads((Path(spec["cluster_dir"]) / "procs" / "node3.json").read_text())
        for item in records["records"]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(item["pid"], signal.SIGKILL)
        assert node_user.wait_until_clean(nodes=[node3], scratch=False) == {}
        assert node_user.leftovers(nodes=[node3]).keys() == {"node3"}  # its scratch
    finally:
        subprocess.run([*link, "link", "set", "eth0", "up"], check=True)
        gateway = node3.address.rsplit(".", 1)[0] + ".254"  # as the bed set it up
        subprocess.run([*link, "route", "replace", "default", "via", gateway], check=True)
    again = node_user.dask("stop", spec["cluster_id"])
    assert again.returncode == 0, again.stderr
    assert "not checked" not in again.stdout and "on its 3 node(s)" in again.stdout, again.stdout
    assert node_user.leftovers() == {}
