"""The JupyterLab Dask tab's REST API (dask-labextension's /dask/clusters) on a real Jupyter
server from the installed environment, inside a (simulated) PBS job of three nodes: its "New",
scale, adapt and close buttons make and drive an HPCCluster through the configured factory."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, Optional

import pytest
from hpc_user import PythonUser
from kernel_session import wait_for

pytestmark = [pytest.mark.notebooks, pytest.mark.ssh_nodes, pytest.mark.timeout(600)]


class JupyterServer:
    def __init__(self, user: PythonUser, port: int = 18915) -> None:
        self.user = user
        self.token = os.urandom(16).hex()
        self.url = f"http://{user.node.address}:{port}"
        log = (user.home / "jupyter-server.log").open("w")
        env = {**user.env, "PBS_NODEFILE": str(user.hostfile)}  # as inside a PBS job
        self.process = user.node.popen(
            [str(user.install.prefix / "bin" / "jupyter"), "server", "--allow-root",
             "--no-browser", f"--ServerApp.ip={user.node.address}", f"--ServerApp.port={port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={user.home}"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(self._answers, limit=120, what="the Jupyter server")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            log = (self.user.home / "jupyter-server.log").read_text()
            raise AssertionError(f"jupyter server exited:\n{log[-3000:]}")
        try:
            self.request("GET", "/api/status")
        except OSError:
            return False
        return True

    def request(self, method: str, path: str, body: Optional[dict[str, Any]] = None) -> Any:
        request = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=180) as response:
            text = response.read()
        return json.loads(text) if text else None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def server(python_user: PythonUser) -> Iterator[JupyterServer]:
    running = JupyterServer(python_user)
    try:
        yield running
    finally:
        running.stop()


def test_dask_tab_creates_scales_adapts_and_closes_an_hpccluster(
    python_user: PythonUser, server: JupyterServer
):
    user = python_user
    model = server.request("PUT", "/dask/clusters/")  # the "New" button
    assert model["name"] == "LabCluster 1"
    assert model["workers"] == 3 and model["cores"] >= 3
    assert model["scheduler_address"].startswith(f"tls://{user.node.address}:")
    assert model["dashboard_link"].startswith(f"http://{user.node.address}:")
    [status] = user.status()
    assert status["launcher"] == "ssh" and status["workers"] == 3
    assert [node["host"] for node in status["nodes"]] == ["node1", "node2", "node3"]
    cluster = f"/dask/clusters/{model['id']}"
    assert [listed["id"] for listed in server.request("GET", "/dask/clusters")] == [model["id"]]

    server.request("PATCH", cluster, {"workers": 1})
    assert wait_for(lambda: server.request("GET", cluster)["workers"] == 1, what="1 worker")
    assert wait_for(lambda: user.status()[0]["workers"] == 1, what="status: 1 worker")

    adapted = server.request("PATCH", cluster, {"adapt": {"minimum": 1, "maximum": 2}})
    assert adapted["adapt"] == {"minimum": 1, "maximum": 2}
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.request("PATCH", cluster, {"adapt": {"minimum": 1, "maximum": 9}})
    assert refused.value.code == 500
    assert "the allocation holds 3 workers" in refused.value.read().decode()

    server.request("DELETE", cluster)  # the close button
    assert server.request("GET", "/dask/clusters") == []
    assert user.status() == []
    assert user.leftovers(server.process.pid) == {}

