"""Bad input and faults in a hub session: start typed twice in two terminals, a stopped cluster's
link, the server's job ended under the user (scancel), and the server dying inside its job."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from hub_helpers import connect_cell, fetch, fetch_dashboard
from hub_site import HubSite, Person, RunningCluster, start_in_terminal
from server_api import UserServer
from testbed.scratch import owned_scratch

pytestmark = [pytest.mark.jupyterhub, pytest.mark.slurm]


def test_second_start_leaves_the_first_clusters_file(hub_site: HubSite,
                                                     alice_cluster: RunningCluster) -> None:
    second = alice_cluster.server.terminal()
    try:
        code, screen = second.run("start-dask-cluster")
        assert code != 0 and "--scheduler-file" in screen, screen
        assert fetch_dashboard(alice_cluster.server, alice_cluster.link)[0] == 200
        code, screen = second.run("start-dask-cluster --scheduler-file ~/second.json")
        assert code == 0, screen  # two clusters side by side
        code, screen = second.run("stop-dask-cluster")  # the latest: the second one
        assert code == 0, screen
    finally:
        second.close()
    assert fetch_dashboard(alice_cluster.server, alice_cluster.link)[0] == 200


def test_stopped_clusters_link_is_refused(hub_site: HubSite,
                                          alice_cluster: RunningCluster) -> None:
    code, screen = alice_cluster.terminal.run("stop-dask-cluster --all")
    assert code == 0, screen
    status, page = fetch(alice_cluster.server, alice_cluster.link)
    assert status == 403 and "is not allowed" in page, (status, page[:300])


def test_scancel_leaves_nothing_and_the_link_is_refused(hub_site: HubSite,
                                                        bob_cluster: RunningCluster) -> None:
    job = hub_site.hub.server(bob_cluster.person.name)["state"]["job_id"]
    hub_site.slurm.run(["scancel", job])
    deadline = time.monotonic() + 60
    while bob_cluster.person.unix.pids() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert bob_cluster.person.unix.pids() == []  # nothing of Bob's on any node
    while owned_scratch(bob_cluster.person.unix.uid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert owned_scratch(bob_cluster.person.unix.uid) == []  # nor in any node's /tmp
    assert fetch(bob_cluster.server, bob_cluster.link)[0] != 200


def server_pid(person: Person) -> int:
    """The person's Jupyter server process (not the daskhpc-singleuser keeping it)."""
    for pid in person.unix.pids():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[1].endswith(b"/jupyterhub-singleuser"):
            return pid
    raise AssertionError(f"no jupyterhub-singleuser process of {person.name}")


def wait_until_serving(server: UserServer, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            server.request("GET", "api/status")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_server_dies_the_cluster_stays_and_the_new_server_reaches_it(
        hub_site: HubSite) -> None:
    """The site runs the server through daskhpc-singleuser: killed, it comes back on the same
    port inside the same job, and the cluster started from its terminal never stopped. Stopped
    from the hub, the job ends with everything in it."""
    alice = hub_site.alice
    cluster = start_in_terminal(hub_site, alice)
    job = hub_site.hub.server(alice.name)["state"]["job_id"]
    killed = server_pid(alice)
    os.kill(killed, signal.SIGKILL)
    wait_until_serving(cluster.server)
    assert server_pid(alice) != killed
    assert hub_site.hub.server(alice.name)["state"]["job_id"] == job  # the same job
    job_log = (alice.unix.home / f"jupyterhub_slurmspawner_{job}.log").read_text()
    assert "the Jupyter server ended (killed by SIGKILL); starting it again" in job_log
    terminal = cluster.server.terminal()  # the old one died with its server
    code, screen = terminal.run("dask-cluster-status")
    assert code == 0 and ": running" in screen and cluster.link in screen, screen
    kernel = cluster.server.kernel("dask")
    try:
        lines = kernel.execute(connect_cell(alice.name)).splitlines()
    finally:
        kernel.close()
    assert lines[0] == "['node1', 'node2']" and lines[2] == cluster.link, lines

    hub_site.hub.stop_server(alice.name)
    deadline = time.monotonic() + 60
    while (alice.unix.pids() or job in [line.split()[0] for line in hub_site.slurm.jobs()]
           ) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job not in [line.split()[0] for line in hub_site.slurm.jobs()]  # the job ended
    assert alice.unix.pids() == []  # nothing of Alice's on any node
    status, page = fetch(cluster.server, cluster.link)
    assert status != 200 and "bokeh" not in page.lower(), (status, page[:300])
