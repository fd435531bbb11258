"""The scheduler's HTTP side: a "starting" page until the dashboard is attached, then the real
dashboard, all under the cluster's secret path; nothing outside it (no root redirect, no route
list, no open proxy route into the nodes)."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from pathlib import Path

import dask
from cluster_helpers import User
from distributed import Scheduler

from daskhpc.cluster.head import dashboard


def get(url: str) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


async def answers(url: str) -> tuple[int, str, dict[str, str]]:
    return await asyncio.get_running_loop().run_in_executor(None, get, url)


SECRET = "/s3cr3t-path"
# Paths someone who found the port would try, none under the secret.
OUTSIDE = ("/", "/status", "/sitemap.json", "/health", "/info/main/workers.html",
           "/individual-plots.json", "/json/identity.json", "/s3cr3t",
           "/proxy/8787/127.0.0.1/status")


def test_starting_page_then_dashboard_only_under_the_secret_path():
    async def scenario() -> list[tuple[str, tuple[int, str, dict[str, str]]]]:
        routes = dashboard.scheduler_routes()
        with dask.config.set({"distributed.scheduler.http.routes": routes}):
            scheduler = Scheduler(port=0, dashboard=False, dashboard_address="127.0.0.1:0",
                                  http_prefix=SECRET)
        port = scheduler.http_server.port
        dashboard.guard(scheduler, SECRET, f"{port}{SECRET}")
        placeholder = dashboard.serve_starting_page(scheduler, SECRET)
        async with scheduler:
            root = f"http://127.0.0.1:{port}"
            base = root + SECRET
            seen = [("status before", await answers(f"{base}/status")),
                    ("health before", await answers(f"{base}/health")),
                    ("identity", ("", scheduler.identity()["services"], {}))]
            messages: list[str] = []
            dashboard.attach_later(scheduler, placeholder, SECRET, messages.append)
            deadline = time.monotonic() + 60
            while "dashboard attached" not in messages and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            seen += [("status after", await answers(f"{base}/status")),
                     ("plots", await answers(f"{base}/individual-plots.json")),
                     ("proxy", await answers(f"{base}/proxy/8787/127.0.0.1/status"))]
            seen += [(path, await answers(root + path)) for path in OUTSIDE]
            return seen

    seen = dict(asyncio.run(scenario()))
    status, body, headers = seen["status before"]
    assert status == 503 and "dashboard is starting" in body
    assert headers["Retry-After"] == "1"
    assert seen["health before"][0] == 200  # the scheduler's own routes answer at once
    status, body, _ = seen["status after"]
    assert status == 200 and "bokeh" in body.lower()
    assert seen["plots"][0] == 200 and "individual-task-stream" in seen["plots"][1]
    assert seen["proxy"][0] == 404
    # Clients format links from the reported "port": it carries the path.
    assert str(seen["identity"][1]["dashboard"]).endswith(SECRET)
    for path in OUTSIDE:
        status, body, _ = seen[path]
        assert status == 404 and "s3cr3t" not in body, (path, status, body[:200])


def test_started_cluster_serves_its_dashboard(user: User):
    result = user.dask("start", "--workers-per-node", "1")
    assert result.returncode == 0, result.stderr
    spec = user.latest_spec()
    assert len(spec["dashboard_secret"]) >= 24
    url = f"http://127.0.0.1:{spec['dashboard_port']}/{spec['dashboard_secret']}/status"
    assert f"dashboard:      {url}" in result.stdout
    deadline = time.monotonic() + 30
    while (answer := get(url))[0] == 503 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert answer[0] == 200, answer[1][:300]
    assert get(f"http://127.0.0.1:{spec['dashboard_port']}/status")[0] == 404
    supervisor_log = Path(spec["cluster_dir"]) / "logs" / "supervisor.log"
    assert "dashboard attached" in supervisor_log.read_text()
    assert user.dask("stop").returncode == 0
