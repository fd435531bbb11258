"""What a user gets back from the hub: pages through the proxy, as a browser fetches them."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from server_api import UserServer


def fetch(server: UserServer, path: str) -> tuple[int, str]:
    """GET a path of the hub (e.g. a /user/<name>/proxy/... link) with the server's token."""
    request = urllib.request.Request(server.hub_url + path, headers=server.headers())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


# A task on every worker: the nodes they ran on, their sum, and the client's dashboard link.
ON_EVERY_WORKER = """\
import socket
workers = client.scheduler_info(n_workers=-1)["workers"]
futures = [client.submit(lambda i: (i * i, socket.gethostname()), i, workers=[w], pure=False)
           for i, w in enumerate(workers)]
print(sorted(set(host for _, host in client.gather(futures))))
print(sum(square for square, _ in client.gather(futures)))
print(client.dashboard_link)
"""


def connect_cell(user: str) -> str:
    """The Palmetto notebooks' connect cell, unchanged, plus a task on every worker."""
    return ("from dask.distributed import Client\n"
            f"client = Client(scheduler_file='/home/{user}/dask-scheduler.json')\n"
            + ON_EVERY_WORKER)


def fetch_dashboard(server: UserServer, path: str, timeout: float = 60) -> tuple[int, str]:
    """Like fetch, past the "starting" page (503) the dashboard shows until it is attached."""
    deadline = time.monotonic() + timeout
    while (answer := fetch(server, path))[0] == 503 and time.monotonic() < deadline:
        time.sleep(0.5)
    return answer
