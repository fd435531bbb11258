"""A real JupyterHub on a Slurm bed, as a site runs one in front of its batch system.

The hub (this venv's `jupyterhub`, PAM login of real Unix users) and its configurable-http-proxy
listen on the bed's gateway address, which the nodes reach; batchspawner's SlurmSpawner submits
each user's server as a 2-node job (`sudo -u <user> sbatch`) whose first node runs
`batchspawner-singleuser daskhpc-singleuser` from the daskhpc environment as a job step (it
keeps `jupyterhub-singleuser` running while the job lives).
Which environment, and what the job script does before (e.g. `module load daskhpc`), is set per
user in users.json, read at each spawn. Tests drive the hub's REST API with a service token and
the user's server (terminals, kernels) through the proxy, as the browser would.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

from testbed.slurm import SlurmBed

JUPYTERHUB = Path(sys.executable).with_name("jupyterhub")
HUB_PATH = "/usr/local/bin:/usr/bin:/bin"  # sbatch, sudo, configurable-http-proxy
SERVICE = "daskhpc-tests"


def missing_requirements() -> Optional[str]:
    if not JUPYTERHUB.exists():
        return "the JupyterHub tests need jupyterhub in the test venv (tests/requirements.txt)"
    for tool in ("configurable-http-proxy", "sudo"):
        if shutil.which(tool, path=HUB_PATH) is None:
            return (f"the JupyterHub tests need {tool!r} "
                    "(npm install -g configurable-http-proxy; apt-get install sudo)")
    return None


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def config_text(settings: dict[str, Any]) -> str:
    """jupyterhub_config.py: what a site admin writes for batchspawner on Slurm."""
    return f"""\
import json
from pathlib import Path

SETTINGS = {settings!r}
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = SETTINGS["bind_url"]
c.JupyterHub.hub_ip = SETTINGS["hub_ip"]
c.JupyterHub.hub_port = SETTINGS["hub_port"]
c.ConfigurableHTTPProxy.api_url = SETTINGS["proxy_api_url"]
c.JupyterHub.db_url = "sqlite:///" + SETTINGS["workdir"] + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = SETTINGS["workdir"] + "/cookie_secret"
c.JupyterHub.pid_file = SETTINGS["workdir"] + "/jupyterhub.pid"
c.Authenticator.allow_all = True  # every Unix user PAM accepts
c.JupyterHub.services = [{{"name": {SERVICE!r}, "api_token": SETTINGS["token"]}}]
c.JupyterHub.load_roles = [{{"name": {SERVICE!r}, "services": [{SERVICE!r}],
                            "scopes": ["admin:users", "admin:servers", "access:servers"]}}]

c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 240
c.Spawner.http_timeout = 180
c.Spawner.environment = {{"SLURM_CONF": SETTINGS["slurm_conf"]}}
c.SlurmSpawner.req_options = "--nodes=2"
# The server is one task on the job's first node; the rest of the job is the user's.
# --export=ALL: the job's `--export=<keepvars>` leaves SLURM_EXPORT_ENV set, and srun would
# otherwise drop what the prologue set up (module load: PATH, JUPYTER_PATH for the kernel).
c.SlurmSpawner.req_srun = "srun --nodes=1 --ntasks=1 --export=ALL"
c.SlurmSpawner.startup_poll_interval = 0.3
# squeue reports the batch host by name (nodeN); the hub reaches it by address.
c.SlurmSpawner.state_exechost_re = r"\\s+node(\\d+)$"
c.SlurmSpawner.state_exechost_exp = SETTINGS["node_address_prefix"] + r"\\1"


def per_user(spawner):
    user = json.loads(Path(SETTINGS["users_file"]).read_text())[spawner.user.name]
    # The server is started again if it dies while the job lives (daskhpc.singleuser).
    spawner.cmd = [user["env"] + "/bin/daskhpc-singleuser"]
    spawner.batchspawner_singleuser_cmd = user["env"] + "/bin/batchspawner-singleuser"
    spawner.req_prologue = user["prologue"]


c.Spawner.pre_spawn_hook = per_user
"""


class Hub:
    """JupyterHub + proxy on the Slurm bed's gateway; start() returns once /hub/api answers."""

    def __init__(self, slurm: SlurmBed, workdir: Path) -> None:
        self.slurm = slurm
        self.workdir = workdir
        self.address = slurm.nodes.gateway
        self.port = 0
        self.token = secrets.token_hex(16)
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.users: dict[str, dict[str, str]] = {}

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "hub.log"

    def add_user(self, name: str, env: str, prologue: str = "") -> None:
        """How `name`'s server starts: from `env` (the job script expands it), after `prologue`
        in the job script."""
        self.users[name] = {"env": env, "prologue": prologue}
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "users.json").write_text(json.dumps(self.users))

    def start(self, timeout: float = 60) -> Hub:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "users.json").write_text(json.dumps(self.users))
        self.port = free_port(self.address)
        # The bed's nodes are node1..nodeN at 10.77.<subnet>.(10+N): one digit suffices here.
        first = self.slurm.compute[0].address
        settings = {
            "bind_url": self.url,
            "hub_ip": self.address,
            "hub_port": free_port(self.address),
            "proxy_api_url": f"http://127.0.0.1:{free_port('127.0.0.1')}",
            "workdir": str(self.workdir),
            "token": self.token,
            "slurm_conf": str(self.slurm.conf),
            "node_address_prefix": first.rsplit(".", 1)[0] + ".1",
            "users_file": str(self.workdir / "users.json"),
        }
        config = self.workdir / "jupyterhub_config.py"
        config.write_text(config_text(settings))
        # SLURM_CONF for the spawner's squeue (its sbatch gets Spawner.environment).
        env = {"PATH": HUB_PATH, "LANG": "C.UTF-8", "HOME": str(self.workdir),
               "SLURM_CONF": str(self.slurm.conf)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([str(JUPYTERHUB), "-f", str(config)], env=env,
                                            cwd=self.workdir, stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyterhub exited: {self.log_tail()}")
            try:
                self.api("GET", "/hub/api/")
                return self
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyterhub did not answer: {self.log_tail()}") from None
                time.sleep(0.3)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the hub and the proxy it started
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- the REST API, as the tests' service ---------------------------------------------------
    def api(self, method: str, path: str, body: Optional[dict[str, Any]] = None,
            timeout: float = 30) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
        return json.loads(text) if text.strip() else None

    def server(self, user: str) -> Optional[dict[str, Any]]:
        """The user's default server, None if none (or the hub has not seen the user yet)."""
        try:
            model = self.api("GET", f"/hub/api/users/{user}")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        return model.get("servers", {}).get("")  # type: ignore[no-any-return]

    def start_server(self, user: str, timeout: float = 240) -> dict[str, Any]:
        """Spawn the user's server (a Slurm job) and wait until the hub calls it ready.

        A spawn the hub reports failed (500) is tried once more, as a user would press Start
        again: on a loaded 2-core machine a job's server has missed the hub's timeouts."""
        try:
            self.api("POST", f"/hub/api/users/{user}")
        except urllib.error.HTTPError as error:
            if error.code != 409:  # 409: the user exists already
                raise
        try:
            self.api("POST", f"/hub/api/users/{user}/server")
        except urllib.error.HTTPError as error:
            if error.code != 500:
                raise
            print(f"first spawn of {user} failed; hub log:\n{self.log_tail()}")
            self.api("POST", f"/hub/api/users/{user}/server")
        deadline = time.monotonic() + timeout
        while True:
            server = self.server(user)
            if server and server.get("ready"):
                return server
            if server is None and time.monotonic() > deadline - timeout + 5:
                raise RuntimeError(f"the server of {user} did not start: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server of {user} not ready in time: {self.log_tail()}")
            time.sleep(0.5)

    def stop_server(self, user: str, timeout: float = 120) -> None:
        try:
            self.api("DELETE", f"/hub/api/users/{user}/server")
        except urllib.error.HTTPError as error:
            if error.code not in (204, 400, 404):
                raise
        deadline = time.monotonic() + timeout
        while self.server(user) is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server of {user} did not stop: {self.log_tail()}")
            time.sleep(0.5)
