"""The dashboard is its owner's alone: another hub user gets nothing through their own server, a
host outside the user's running clusters is refused by the proxy, and another Unix user on the
node who finds the port gets 404s."""

from __future__ import annotations

import pytest
from hub_helpers import fetch, fetch_dashboard
from hub_site import HubSite, RunningCluster

pytestmark = [pytest.mark.jupyterhub, pytest.mark.slurm]

# What someone who found the port tries first; none of it is under the secret path.
GUESSES = ("/", "/status", "/workers", "/sitemap.json", "/info/main/workers.html",
           "/individual-plots.json", "/health")


def test_other_user_cannot_read_the_dashboard(hub_site: HubSite, alice_cluster: RunningCluster,
                                             bob_cluster: RunningCluster) -> None:
    assert fetch_dashboard(alice_cluster.server, alice_cluster.link)[0] == 200
    bob = bob_cluster.server
    target = f"{alice_cluster.host}:{alice_cluster.port}"
    # Through Bob's own server: his clusters share the node, so the proxy lets him to the
    # port, and the dashboard answers him nothing.
    for guess in GUESSES:
        status, page = fetch(bob, f"{bob.base}proxy/{target}{guess}")
        assert status in (403, 404) and "bokeh" not in page.lower(), (guess, status, page[:200])
    # Alice's scheduler (TLS, no HTTP) through Bob's server: nothing either.
    address = alice_cluster.screen.split("scheduler:")[1].split()[0]
    status, _ = fetch(bob, f"{bob.base}proxy/{address.rsplit('/', 1)[-1]}/")
    assert status != 200
    # Bob as a Unix user on the same node, in his terminal: the port answers 404, and Alice's
    # scheduler file (which holds the secret) is not his to read.
    urls = " ".join(f"http://{target}{guess}" for guess in GUESSES)
    _, screen = bob_cluster.terminal.run(
        "python3 -c 'import sys, urllib.request as r, urllib.error as e\n"
        "for u in sys.argv[1:]:\n"
        "    try: print(\"GOT\", r.urlopen(u).status)\n"
        "    except e.HTTPError as x: print(\"GOT\", x.code)' " + urls
        + f"; cat /home/{alice_cluster.person.name}/dask-scheduler.json")
    assert screen.count("GOT 404") == len(GUESSES), screen
    assert alice_cluster.secret not in screen.split("dask-scheduler.json", 1)[-1]
    assert "Permission denied" in screen


def test_host_outside_the_users_clusters_is_refused(hub_site: HubSite,
                                                   alice_cluster: RunningCluster) -> None:
    login_node = hub_site.slurm.login.address  # in no cluster of Alice's
    status, page = fetch(alice_cluster.server,
                         f"{alice_cluster.server.base}proxy/{login_node}:22/")
    assert status == 403 and "is not allowed" in page
