"""What the user sees in a real browser (Debian's chromium, driven by Playwright): the hub login,
the dashboard link start-dask-cluster printed, and JupyterLab's Dask tab on the same cluster while
a computation runs."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import HubSite, RunningCluster, log_in, screenshot_dir

pytestmark = [pytest.mark.jupyterhub, pytest.mark.browser, pytest.mark.slurm]

# Runs long enough to be watched: 60 tasks of 0.25 s each on the 2 one-thread workers.
SLOW_WORK = """\
import time
def slow(i):
    time.sleep(0.25)
    return i
futures = client.map(slow, range(60), pure=False)
"""


def save(page: Any, name: str) -> None:
    folder = screenshot_dir()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / name))


def test_printed_link_shows_the_dashboard_and_every_worker(
        browser: Any, hub_site: HubSite, alice_cluster: RunningCluster) -> None:
    page = log_in(browser, hub_site, hub_site.alice)
    try:
        page.goto(hub_site.hub.url + alice_cluster.link)
        # Bokeh draws once its websocket (through the hub) is up
        page.wait_for_selector("canvas", state="attached")
        page.wait_for_timeout(1500)
        save(page, "dashboard-status-via-jupyterhub.png")
        page.goto(hub_site.hub.url + alice_cluster.link.replace("/status", "/workers"))
        for worker in ("node1-0", "node2-0"):
            page.get_by_text(worker, exact=True).first.wait_for()
        save(page, "dashboard-workers-via-jupyterhub.png")
    finally:
        page.close()


def test_dask_tab_follows_a_computation(browser: Any, hub_site: HubSite,
                                         alice_cluster: RunningCluster) -> None:
    page = log_in(browser, hub_site, hub_site.alice)
    kernel = alice_cluster.server.kernel("dask")
    try:
        tab = page.locator('[data-id="dask-dashboard-launcher"]')
        tab.click()
        url = page.locator(".dask-URLInput input")
        url.fill(alice_cluster.link)  # what the search button finds in a connected kernel
        url.press("Enter")
        panes = ("Task Stream", "Progress", "Workers")
        for name in panes:
            button = page.locator(f'button[value="{name}"]')
            button.wait_for()
            assert button.is_enabled(), f"the Dask tab calls {alice_cluster.link} inactive"
            button.click()
        frames = page.locator(f'iframe[src*="{alice_cluster.secret}"]')
        frames.nth(len(panes) - 1).wait_for()
        for index in range(len(panes)):
            frames.nth(index).content_frame.locator("canvas").first.wait_for(state="attached")
        before = page.screenshot()
        kernel.execute(f"from dask.distributed import Client\n"
                       f"client = Client(scheduler_file='/home/{hub_site.alice.name}"
                       f"/dask-scheduler.json')\n{SLOW_WORK}")
        page.wait_for_timeout(4000)
        during = page.screenshot()
        save(page, "jupyterlab-dask-tab.png")
        assert during != before  # the panes follow the computation
        kernel.execute("client.gather(futures); print('done')")
    finally:
        kernel.close()
        page.close()


def test_another_user_gets_no_page(browser: Any, hub_site: HubSite,
                                   alice_cluster: RunningCluster,
                                   bob_cluster: RunningCluster) -> None:
    """Bob, logged in to the same hub, opens Alice's link: the hub does not let him through."""
    page = log_in(browser, hub_site, hub_site.bob)
    try:
        response = page.goto(hub_site.hub.url + alice_cluster.link)
        assert response is not None and response.status >= 400, response
        assert page.locator("canvas").count() == 0
    finally:
        page.close()

