"""The JupyterHub user's journey without a browser: the server runs as a step of a 2-node Slurm
job, a terminal of it starts the cluster across the job's nodes, a notebook kernel connects with
the site's usual line and computes on both nodes. Alice installed daskhpc herself; Bob uses the
admin's --system install through its module."""

from __future__ import annotations

import pytest
from hub_helpers import connect_cell, fetch, fetch_dashboard
from hub_site import VERSION, HubSite, RunningCluster

pytestmark = [pytest.mark.jupyterhub, pytest.mark.slurm]


def check_started_across_the_job(site: HubSite, cluster: RunningCluster) -> None:
    screen = cluster.screen
    assert "launcher srun (inside Slurm job" in screen, screen
    assert "on 2 node(s)" in screen, screen
    assert cluster.host == site.slurm.compute[0].address  # the scheduler runs by the server
    status, page = fetch_dashboard(cluster.server, cluster.link)
    assert status == 200 and "bokeh" in page.lower(), page[:300]
    info = cluster.link.replace("/status", "/info/main/workers.html")
    status, page = fetch(cluster.server, info)
    assert status == 200 and "node1-0" in page and "node2-0" in page, page[:300]


def check_notebook(cluster: RunningCluster, kernel_name: str) -> None:
    kernel = cluster.server.kernel(kernel_name)
    try:
        lines = kernel.execute(connect_cell(cluster.person.name)).splitlines()
    finally:
        kernel.close()
    assert lines[0] == "['node1', 'node2']", lines
    assert int(lines[1]) > 0
    assert lines[2] == cluster.link  # client.dashboard_link: the hub link, secret path included


def test_user_install_terminal_and_notebook(hub_site: HubSite,
                                            alice_cluster: RunningCluster) -> None:
    check_started_across_the_job(hub_site, alice_cluster)
    check_notebook(alice_cluster, "dask")


def test_system_install_through_the_module(hub_site: HubSite, bob_cluster: RunningCluster) -> None:
    check_started_across_the_job(hub_site, bob_cluster)
    # The --system install's kernel, found through the module's JUPYTER_PATH in the server.
    check_notebook(bob_cluster, f"dask-{VERSION}")
