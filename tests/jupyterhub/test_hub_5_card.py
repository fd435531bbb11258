"""The card of a cluster made by the Dask tab's NEW button (a daskhpc LabCluster across the job's
two nodes), every button of it clicked in a real browser as a user would: `<>` puts the connect
code into the open notebook, which then computes on the job's nodes; the dashboard link opens;
SCALE gives the count asked for on the nodes, past the job one clear message; adaptive scaling
follows, and SCALE by hand ends it. One cluster for the module, shut down from its card."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable, Optional

import pytest
from hub_helpers import ON_EVERY_WORKER
from hub_site import HubSite, RunningCluster, log_in, open_dask_tab, screenshot_dir
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from test_hub_2_browser import run_cell

pytestmark = [pytest.mark.jupyterhub, pytest.mark.browser, pytest.mark.slurm]


@dataclass
class Card:
    page: Any
    item: Any  # the card in the Dask tab (a Playwright locator)
    address: str  # its "Scheduler Address"
    link: str  # its "Dashboard URL"

    def shows_workers(self, count: int) -> bool:
        return f"Number of Workers: {count}\n" in self.item.inner_text() + "\n"


def wait_until(check: Callable[[], bool], what: str, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"not seen within {limit} s: {what}"
        time.sleep(0.5)


def workers_on_nodes(site: HubSite, address: str) -> dict[str, int]:
    """Workers of the cluster at address running on each node, as `ps` there shows them (a
    worker is two processes of one command line, its nanny's and its own: count names)."""
    return {node.hostname: len({re.search(r"--name (\S+)", line)[1]  # type: ignore[index]
                                for line in node.processes(f"dask_worker {address} ")})
            for node in site.slurm.compute}


def status_in_terminal(cluster: RunningCluster, address: str) -> dict[str, int]:
    """What `dask-cluster-status` typed in a new terminal of the user's server says of the
    cluster at address: connected workers per node. (A new terminal: the server the session's
    cluster was started from may have been stopped by test_hub_4_faults, and with it its
    terminal and that cluster; --all then exits 3 for it, so the exit code is not this card's.)"""
    report = cluster.person.unix.home / "status.json"
    terminal = cluster.server.terminal()
    try:
        code, screen = terminal.run(f"dask-cluster-status --all --json > {report}")
    finally:
        terminal.close()
    assert code in (0, 3), screen
    [listed] = [entry for entry in json.loads(report.read_text())
                if entry["scheduler"] == address]
    assert listed["running"], listed
    return {node["host"]: node["workers"] for node in listed["nodes"]}


def wait_for_workers(site: HubSite, card: Card, counts: list[int], limit: float = 120) -> None:
    """Until the card shows sum(counts) workers and the nodes run that many worker processes
    each (in any order: which worker retires is the scheduler's choice)."""
    deadline = time.monotonic() + limit
    while True:
        seen = workers_on_nodes(site, card.address)
        if card.shows_workers(sum(counts)) and sorted(seen.values()) == counts:
            return
        assert time.monotonic() < deadline, (
            f"after {limit} s: the card shows {card.item.inner_text()!r}, the nodes run {seen}, "
            f"expected {counts}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def card(browser: Any, hub_site: HubSite, alice_cluster: RunningCluster) -> Iterator[Card]:
    """Alice's JupyterLab with a "Python (Dask)" notebook open and, in the Dask tab, the card of
    the cluster NEW made; its SHUTDOWN button at the end leaves no worker on the nodes."""
    page = log_in(browser, hub_site, hub_site.alice, height=1300)
    address = ""
    try:
        page.locator('.jp-LauncherCard[title="Python (Dask)"]').first.click()
        run_cell(page, "print('kernel up')")
        open_dask_tab(page)
        new = page.locator('.dask-DaskClusterManager [data-command="dask:launch-cluster"]')
        new.scroll_into_view_if_needed()
        new.click()
        item = page.locator(".dask-ClusterListingItem")
        item.wait_for()
        text = item.inner_text()
        found = re.search(r"Scheduler Address: (tls://\S+)", text)
        assert found, text
        address = found[1]
        yield Card(page, item, address, item.locator("a").get_attribute("href") or "")
        shutdown = item.get_by_text("SHUTDOWN")
        shutdown.scroll_into_view_if_needed()
        shutdown.click()
        item.wait_for(state="detached")
        wait_until(lambda: sum(workers_on_nodes(hub_site, address).values()) == 0,
                   "no worker left after SHUTDOWN", 30)
    finally:
        page.close()


def test_code_button_connects_the_open_notebook(hub_site: HubSite, card: Card) -> None:
    page = card.page
    card.item.locator(".dask-ClusterListingItem-code").click()  # the `<>` button
    # inserted above the notebook's active cell, and made the active one
    injected = page.locator(".jp-Notebook .jp-Cell", has_text=f'Client("{card.address}")')
    injected.wait_for()
    injected.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    shown = injected.locator(".jp-OutputArea-output")
    shown.wait_for()
    assert "Client" in shown.inner_text() and "Error" not in shown.inner_text()
    lines = run_cell(page, ON_EVERY_WORKER).splitlines()
    assert lines[0] == "['node1', 'node2']", lines  # computed on both nodes of the job
    assert lines[2] == card.link  # the client's dashboard link is the card's (through the hub)
    folder = screenshot_dir()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / "jupyterlab-dask-card.png"))


def test_dashboard_link_opens_the_dashboard(card: Card) -> None:
    with card.page.expect_popup() as opened:
        card.item.locator("a").click()
    dashboard = opened.value
    dashboard.set_default_timeout(180_000)  # as log_in's pages: the machine may be loaded
    dashboard.bring_to_front()  # the browser's tab the user now looks at
    try:
        dashboard.wait_for_load_state()
        assert dashboard.url.endswith(card.link)
        if "500: Internal Server Error" in dashboard.content():
            # seen in 3 of 11 runs on a loaded machine, cause not found yet (docs/jupyterhub.md):
            # the user's reload shows the dashboard
            dashboard.reload()
        try:
            dashboard.wait_for_selector("canvas", state="attached")
        except PlaywrightTimeout:
            raise AssertionError(f"no dashboard drawn at {dashboard.url}: "
                                 f"{dashboard.content()[:600]!r}") from None
    finally:
        dashboard.close()


def scale_from_card(card: Card, workers: Optional[int] = None,
                    adapt: Optional[tuple[int, int]] = None) -> None:
    """The card's SCALE button, its dialog filled in (Workers, or Adaptive Scaling with its
    minimum and maximum), and the dialog's SCALE."""
    page = card.page
    card.item.locator(".dask-ClusterListingItem-scale").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for()
    fields = dialog.locator("input.dask-ScalingInput")  # workers, minimum, maximum
    adaptive = dialog.locator("input.dask-ScalingCheckbox")
    adaptive.set_checked(adapt is not None)
    if adapt is not None:
        fields.nth(2).fill(str(adapt[1]))
        fields.nth(1).fill(str(adapt[0]))
    if workers is not None:
        fields.nth(0).fill(str(workers))
    dialog.locator("button", has_text="SCALE").click()


def error_shown(card: Card) -> str:
    """The text of the error dialog now shown, after dismissing it."""
    dialog = card.page.locator(".jp-Dialog")
    dialog.wait_for()
    text = str(dialog.inner_text())
    dialog.locator("button").last.click()
    dialog.wait_for(state="detached")
    return text


def test_scale_button_sets_the_workers_on_the_nodes(hub_site: HubSite, card: Card,
                                                    alice_cluster: RunningCluster) -> None:
    scale_from_card(card, workers=1)
    wait_for_workers(hub_site, card, [0, 1])
    # the terminal's dask-cluster-status agrees (its supervisor counts every few seconds)
    wait_until(lambda: sorted(status_in_terminal(alice_cluster, card.address).values())
               == [0, 1], "dask-cluster-status showing 1 worker", 60)
    scale_from_card(card, workers=2)
    wait_for_workers(hub_site, card, [1, 1])
    # past the job's nodes: one message saying what is wrong and what to do, nothing changes
    scale_from_card(card, workers=3)
    message = error_shown(card)
    assert "Failed to scale cluster" in message
    assert "scale(3): the allocation holds 2 workers" in message, message
    assert "ask for a bigger allocation" in message, message
    assert card.shows_workers(2)
    assert workers_on_nodes(hub_site, card.address) == {"node1": 1, "node2": 1}


def test_adaptive_scaling_and_scale_by_hand_after_it(hub_site: HubSite, card: Card) -> None:
    scale_from_card(card, adapt=(1, 2))
    wait_until(lambda: "Minimum Workers: 1" in card.item.inner_text()
               and "Maximum Workers: 2" in card.item.inner_text(), "the card showing adapt")
    wait_for_workers(hub_site, card, [0, 1])  # idle: Adaptive retires down to its minimum
    # SCALE by hand ends adaptive scaling: the 2 workers stay although the cluster is idle
    scale_from_card(card, workers=2)
    wait_for_workers(hub_site, card, [1, 1])
    assert "Minimum Workers" not in card.item.inner_text()
    time.sleep(6)  # Adaptive (1 s interval, 3 idle rounds) would have retired one by now
    assert card.shows_workers(2)
    assert workers_on_nodes(hub_site, card.address) == {"node1": 1, "node2": 1}
    # an adaptive maximum past the job: the same message
    scale_from_card(card, adapt=(1, 3))
    assert "the allocation holds 2 workers" in error_shown(card)
