"""The scheduler's HTTP side: its routes, and its dashboard attached once the workers are connected.

Importing the Bokeh dashboard costs about 1 CPU second, as much as a worker's whole start, and
nothing waits for it: start-dask-cluster returns when the workers are connected. So the scheduler
starts with its HTTP server only (health, info, metrics), a self-reloading "starting" page
answers the dashboard's paths, and the dashboard is imported in a thread after readiness and
attached on the event loop, where it replaces that page (typically within 1-2 s).

Only its owner can read it: every path the scheduler's HTTP server answers lies under a random
first segment (ClusterSpec.dashboard_secret), known only from the printed link and the 0600
scheduler file. Anything else, including distributed's root redirect and route listing (which
would tell the secret), gets a plain 404, so another user on the node who finds the port learns
nothing. The dashboard "port" the scheduler reports to its clients carries the path, so
`client.dashboard_link` (any `{port}` template, JupyterHub's included) leads to the dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
from typing import Any, Callable

import dask
from tornado import web
from tornado.ioloop import IOLoop

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


class _NotFoundHandler(web.RequestHandler):
    def prepare(self) -> None:
        self.set_status(404)
        self.finish("404: Not Found")


class _ReportedDashboard:
    """Stands in for the HTTP server in the scheduler's services: identity() reports its
    `port`, which carries the secret path; stopping it stops the server."""

    def __init__(self, server: Any, port_and_path: str) -> None:
        self.server = server
        self.port = port_and_path

    def stop(self) -> None:
        self.server.stop()


def guard(scheduler: Any, prefix: str, port_and_path: str) -> None:
    """Answer 404 to every path outside `prefix`, ahead of distributed's own routes, and report
    the dashboard as `port_and_path`."""
    application = scheduler.http_application
    application.add_handlers(".*$", [(rf"(?!{prefix}(/|$)).*", _NotFoundHandler)])
    rules = application.default_router.rules
    rules.insert(0, rules.pop(-2))  # add_handlers puts it before the last (wildcard) rule
    scheduler.services["dashboard"] = _ReportedDashboard(scheduler.http_server, port_and_path)


class _StartingHandler(web.RequestHandler):
    def get(self, *_: str) -> None:
        self.set_status(503)
        self.set_header("Retry-After", "1")
        self.set_header("Cache-Control", "no-store")
        self.write(STARTING_PAGE)


def serve_starting_page(scheduler: Any, prefix: str) -> web.Application:
    """Answer every path under prefix the scheduler's own routes do not with the "starting"
    page."""
    placeholder = web.Application([(rf"{prefix}/.*", _StartingHandler)])
    scheduler.http_application.add_application(placeholder)
    return placeholder


def connect(scheduler: Any, module: Any, prefix: str) -> None:
    """distributed's dashboard under prefix, as its own connect() does but without the redirect
    from "/" (which would tell the prefix to anyone)."""
    from bokeh.resources import Resources
    from bokeh.server.views.static_handler import StaticHandler
    from distributed.dashboard.core import BokehApplication

    bokeh = BokehApplication(module.applications, scheduler, prefix=prefix,
                             template_variables=module.template_variables(scheduler))

    def relative_resources(absolute_url: Any = None) -> Resources:
        # Bokeh roots its scripts at "/<prefix>/static", which misses behind a proxy's path
        # (/user/<name>/proxy/<host>:<port>/...); every page is one level below the prefix, so
        # "static/..." relative to it is right wherever the page is served.
        return Resources(mode="server", root_url="", path_versioner=StaticHandler.append_version)

    bokeh.resources = relative_resources
    scheduler.http_application.add_application(bokeh)
    bokeh.initialize(IOLoop.current())
    bokeh.add_handlers(r".*", [(rf"{prefix}/?", web.RedirectHandler, {"url": f"{prefix}/status"})])
    bokeh.start()


def attach_later(scheduler: Any, placeholder: web.Application, prefix: str,
                 log: Callable[[str], None]) -> None:
    """Import the dashboard in a daemon thread (a stop must not wait for it), then attach it."""
    loop = asyncio.get_running_loop()

    def attach(module: Any) -> None:
        connect(scheduler, module, prefix)
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
