"""The scheduler's HTTP side: its routes, and its dashboard attached once the workers are connected.

Importing the Bokeh dashboard costs about 1 CPU second, as much as a worker's whole start, and
nothing waits for it: start-dask-cluster returns when the workers are connected. So the scheduler
starts with its HTTP server only (health, info, metrics), a self-reloading "starting" page
answers the dashboard's paths, and the dashboard is imported in a thread after readiness and
attached on the event loop, where it replaces that page (typically within 1-2 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
from typing import Any, Callable

import dask
from tornado import web

# distributed's /proxy route forwards unauthenticated HTTP to any port of a worker's host; our
# workers serve no dashboard, and importing it (jupyter-server-proxy, aiohttp) costs the
# scheduler about 0.2 CPU seconds at start.
LEFT_OUT_ROUTES = {"distributed.http.proxy"}

STARTING_PAGE = """<!DOCTYPE html>
<html><head><meta http-equiv="refresh" content="1"><title>Dask dashboard starting</title></head>
<body><p>The Dask dashboard is starting; this page reloads itself.</p></body></html>
"""


def scheduler_routes() -> list[str]:
    """The scheduler's HTTP route modules from dask's configuration, less LEFT_OUT_ROUTES."""
    routes = dask.config.get("distributed.scheduler.http.routes")
    return [route for route in routes if route not in LEFT_OUT_ROUTES]


class _StartingHandler(web.RequestHandler):
    def get(self, *_: str) -> None:
        self.set_status(503)
        self.set_header("Retry-After", "1")
        self.set_header("Cache-Control", "no-store")
        self.write(STARTING_PAGE)


def serve_starting_page(scheduler: Any) -> web.Application:
    """Answer every path the scheduler's own routes do not with the "starting" page."""
    placeholder = web.Application([(r"/.*", _StartingHandler)])
    scheduler.http_application.add_application(placeholder)
    return placeholder


def attach_later(scheduler: Any, placeholder: web.Application,
                 log: Callable[[str], None]) -> None:
    """Import the dashboard in a daemon thread (a stop must not wait for it), then attach it."""
    loop = asyncio.get_running_loop()

    def attach(module: Any) -> None:
        module.connect(scheduler.http_application, scheduler.http_server, scheduler, prefix="/")
        scheduler.http_application.applications.remove(placeholder)
        log("dashboard attached")

    def load() -> None:
        try:
            module = importlib.import_module("distributed.dashboard.scheduler")
        except ImportError as error:
            log(f"no dashboard: {error} (install bokeh into the environment)")
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the cluster stopped
            loop.call_soon_threadsafe(attach, module)

    threading.Thread(target=load, name="dashboard-import", daemon=True).start()
