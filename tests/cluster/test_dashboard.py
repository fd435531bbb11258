"""The scheduler's HTTP side: a "starting" page until the dashboard is attached, then the real
dashboard; no open proxy route into the nodes."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from pathlib import Path

import dask
from cluster_helpers import User
from distributed import Scheduler

from daskhpc.cluster import dashboard


def get(url: str) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


async def answers(url: str) -> tuple[int, str, dict[str, str]]:
    return await asyncio.get_running_loop().run_in_executor(None, get, url)


def test_starting_page_then_dashboard_and_no_proxy_route():
    async def scenario() -> list[tuple[str, tuple[int, str, dict[str, str]]]]:
        routes = dashboard.scheduler_routes()
        with dask.config.set({"distributed.scheduler.http.routes": routes}):
            scheduler = Scheduler(port=0, dashboard=False, dashboard_address="127.0.0.1:0")
        placeholder = dashboard.serve_starting_page(scheduler)
        async with scheduler:
            base = f"http://127.0.0.1:{scheduler.http_server.port}"
            seen = [("status before", await answers(f"{base}/status")),
                    ("health before", await answers(f"{base}/health"))]
            messages: list[str] = []
            dashboard.attach_later(scheduler, placeholder, messages.append)
            deadline = time.monotonic() + 60
            while "dashboard attached" not in messages and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            seen += [("status after", await answers(f"{base}/status")),
                     ("proxy", await answers(f"{base}/proxy/8787/127.0.0.1/status"))]
            return seen

    seen = dict(asyncio.run(scenario()))
    status, body, headers = seen["status before"]
    assert status == 503 and "dashboard is starting" in body
    assert headers["Retry-After"] == "1"
    assert seen["health before"][0] == 200  # the scheduler's own routes answer at once
    status, body, _ = seen["status after"]
    assert status == 200 and "bokeh" in body.lower()
    assert seen["proxy"][0] == 404


def test_started_cluster_serves_its_dashboard(user: User):
    result = user.dask("start", "--workers-per-node", "1")
    assert result.returncode == 0, result.stderr
    spec = user.latest_spec()
    url = f"http://127.0.0.1:{spec['dashboard_port']}/status"
    assert f"dashboard:      {url}" in result.stdout
    deadline = time.monotonic() + 30
    while (answer := get(url))[0] == 503 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert answer[0] == 200, answer[1][:300]
    supervisor_log = Path(spec["cluster_dir"]) / "logs" / "supervisor.log"
    assert "dashboard attached" in supervisor_log.read_text()
    assert user.dask("stop").returncode == 0
