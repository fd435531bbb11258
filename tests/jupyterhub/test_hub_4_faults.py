"""Bad input and faults in a hub session: start typed twice in two terminals, a stopped cluster's
link, and the server's job ended under the user (scancel)."""

from __future__ import annotations

import time

import pytest
from conftest import HubSite, RunningCluster
from hub_helpers import fetch, fetch_dashboard

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
    assert fetch(bob_cluster.server, bob_cluster.link)[0] != 200
