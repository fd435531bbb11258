"""What the user sees in a real browser (Debian's chromium, driven by Playwright): the hub login,
the dashboard link start-dask-cluster printed, and JupyterLab's Dask tab on the same cluster while
a computation runs."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from hub_helpers import ON_EVERY_WORKER, connect_cell, fetch
from hub_site import HubSite, RunningCluster, log_in, open_dask_tab, screenshot_dir
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = [pytest.mark.jupyterhub, pytest.mark.browser, pytest.mark.slurm]

# Runs long enough to be watched: 120 tasks of 0.25 s each on the 2 one-thread workers. One line:
# typed into a notebook cell, a new line would be auto-indented.
SLOW_WORK = "futures = client.map(__import__('time').sleep, [0.25] * 120, pure=False)"
# The last one opened is the tab in front.
PANES = ("Workers", "Task Stream", "Progress")


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


def run_cell(page: Any, code: str) -> str:
    """Type code into the notebook's last cell once its kernel is idle, run it (Shift+Enter), and
    return its output, as a user does who waits for the kernel before typing."""
    notebook = page.locator(".jp-NotebookPanel:visible")
    notebook.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for()
    cell = notebook.locator(".jp-CodeCell").nth(notebook.locator(".jp-CodeCell").count() - 1)
    editor, prompt = cell.locator(".cm-content"), cell.locator(".jp-InputPrompt")
    for _ in range(3):
        # a click before a new notebook's editor is ready types nowhere (or only part), and
        # a Shift+Enter may find the focus elsewhere: check each step as a user sees it
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.press("Delete")
        page.keyboard.type(code)
        if not editor.inner_text().rstrip().endswith(code.splitlines()[-1]):
            page.wait_for_timeout(1000)
            continue
        page.keyboard.press("Shift+Enter")
        try:  # "[*]:" while it runs, "[1]:" when done; "[ ]:" means it never ran
            page.wait_for_function("p => !p.textContent.includes('[ ]')",
                                   arg=prompt.element_handle(), timeout=15_000)
            break
        except PlaywrightTimeout:
            continue
    output = cell.locator(".jp-OutputArea-output").first
    try:
        output.wait_for()
    except PlaywrightTimeout:
        status = notebook.locator(".jp-Notebook-ExecutionIndicator").get_attribute("data-status")
        raise AssertionError(f"no output: cell {editor.inner_text()!r}, prompt "
                             f"{prompt.inner_text()!r}, kernel {status}") from None
    return str(output.inner_text())


def open_panes(page: Any, link_part: str) -> None:
    """Click the pane buttons of the tab (enabled only for a dashboard the tab found active);
    each pane's Bokeh plot draws inside its iframe, loaded from the link."""
    for name in PANES:
        button = page.locator(f'button[value="{name}"]')
        button.wait_for()
        assert button.is_enabled(), "the Dask tab calls the dashboard inactive"
        button.click()
    frames = page.locator(f'iframe[src*="{link_part}"]')
    frames.nth(len(PANES) - 1).wait_for()
    for index in range(len(PANES)):
        frames.nth(index).content_frame.locator("canvas").first.wait_for(state="attached")


def show_tab(page: Any, title_part: str) -> None:
    """Bring a tab of JupyterLab's main area to the front by clicking its title."""
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=title_part).first.click()


def wait_for_url(page: Any, expected: str) -> None:
    """Until the Dask tab's URL box shows `expected`."""
    page.wait_for_function(
        "expected => document.querySelector('.dask-URLInput input').value === expected",
        arg=expected)


def test_search_button_finds_the_notebooks_cluster(browser: Any, hub_site: HubSite,
                                                   alice_cluster: RunningCluster) -> None:
    """A notebook on "Python (Dask)" connects with the usual line; the tab's search button asks
    its kernel for the client's dashboard link (the hub link) and the panes follow the work."""
    page = log_in(browser, hub_site, hub_site.alice)
    try:
        page.locator('.jp-LauncherCard[title="Python (Dask)"]').first.click()
        output = run_cell(page, "from dask.distributed import Client\n"
                                f"client = Client(scheduler_file='/home/{hub_site.alice.name}"
                                "/dask-scheduler.json')\nprint(client.dashboard_link)")
        assert output.strip() == alice_cluster.link
        open_dask_tab(page)
        url = page.locator(".dask-URLInput input")
        assert url.input_value() == ""
        page.locator('.dask-DaskSidebar [title="Auto-detect dashboard URL"]').click()
        expect = alice_cluster.link.removesuffix("status")  # the tab keeps the dashboard's root
        wait_for_url(page, expect)
        open_panes(page, alice_cluster.secret)  # tabs in front of the notebook
        show_tab(page, ".ipynb")
        run_cell(page, f"{SLOW_WORK}\nprint('submitted')")
        show_tab(page, "Progress")
        page.wait_for_timeout(1000)
        earlier = page.screenshot()
        page.wait_for_timeout(2000)
        later = page.screenshot()
        save(page, "jupyterlab-dask-tab.png")
        assert later != earlier  # the panes follow the computation
        show_tab(page, ".ipynb")
        assert run_cell(page, "print(len(client.gather(futures)))").strip() == "120"
    finally:
        page.close()
        shut_down_kernels(alice_cluster)


def shut_down_kernels(cluster: RunningCluster) -> None:
    """The notebooks' kernels, as JupyterLab's "Shut Down All Kernels" does."""
    for kernel in cluster.server.request("GET", "api/kernels"):
        cluster.server.request("DELETE", f"api/kernels/{kernel['id']}")


def test_new_button_makes_a_cluster_across_the_job(browser: Any, hub_site: HubSite,
                                                   alice_cluster: RunningCluster) -> None:
    """The tab's NEW button, clicked while the terminal's cluster runs: a daskhpc cluster on
    both nodes of the job, its card with the dashboard through the hub, panes drawn from it, a
    new notebook computing on it and, with the site's unchanged connect line, on the terminal's
    cluster (one client certificate for both), and its SHUTDOWN button leaving nothing behind."""
    alice = hub_site.alice
    before = set(alice.unix.pids())
    # Tall enough for the cluster list below the pane buttons (a user scrolls; so do we).
    page = log_in(browser, hub_site, alice, height=1300)
    try:
        open_dask_tab(page)
        new = page.locator('.dask-DaskClusterManager [data-command="dask:launch-cluster"]')
        new.scroll_into_view_if_needed()
        new.click()
        card = page.locator(".dask-ClusterListingItem")
        card.wait_for()
        text = card.inner_text()
        assert text.startswith("LabCluster 1") and "Number of Workers: 2" in text, text
        link = card.locator("a").get_attribute("href")
        hub_link = re.fullmatch(r"/user/([^/]+)/proxy/([\d.]+):\d+/([\w-]+)/status", link or "")
        assert hub_link and hub_link[1] == alice.name, link
        assert f"Dashboard URL: {link}" in text
        card.click()  # the tab shows the card's dashboard
        wait_for_url(page, link)
        open_panes(page, hub_link[3])
        address = re.search(r"Scheduler Address: (tls://\S+)", text)
        assert address, text
        kernel = alice_cluster.server.kernel("dask")
        try:
            terminals = kernel.execute(connect_cell(alice.name)).splitlines()
            lines = kernel.execute("from dask.distributed import Client\n"
                                   f"client = Client({address[1]!r})\n{ON_EVERY_WORKER}"
                                   ).splitlines()
        finally:
            kernel.close()
        assert terminals[0] == "['node1', 'node2']", terminals
        assert terminals[2] == alice_cluster.link
        assert lines[0] == "['node1', 'node2']", lines
        assert lines[2] == link
        shutdown = card.get_by_text("SHUTDOWN")
        shutdown.scroll_into_view_if_needed()
        shutdown.click()
        card.wait_for(state="detached")
    finally:
        page.close()
    deadline = time.monotonic() + 30
    while set(alice.unix.pids()) - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(alice.unix.pids()) - before == set()  # nothing of it on any node
    status, answer = fetch(alice_cluster.server, link)  # its port is closed now
    assert status >= 400 and "bokeh" not in answer.lower(), (status, answer[:300])


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

