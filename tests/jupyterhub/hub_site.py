"""The JupyterHub test site and what tests do with it: its people, their installs, a
cluster started in a terminal, logging in with the browser (fixtures in conftest.py)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server_api import Terminal, UserServer
from testbed import hub as hub_testbed
from testbed import nodes as nodes_testbed
from testbed import slurm as slurm_testbed
from testbed import users as users_testbed
from testbed.hub import Hub
from testbed.install import PASSED_THROUGH, PERSISTENT_UV_CACHE, SYSTEM_PATH
from testbed.slurm import SlurmBed
from testbed.users import UnixUser

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"  # one every user can run (pyenv's lives under /root)
LMOD_INIT = "/usr/share/lmod/lmod/init/bash"
VERSION = "0.1.0"
# uv's download cache for the user's own install, kept between sessions (given to each new
# test user): a cold install downloads ~400 MB and takes minutes.
USER_UV_CACHE = Path("/var/tmp/daskhpc-hub-tests-uv-cache")


@dataclass
class Person:
    unix: UnixUser
    env: Path  # the daskhpc environment the server runs from
    prologue: str  # what the job script runs first
    module_commands: str  # what the user types in a terminal for the wrappers ("" if none)

    @property
    def name(self) -> str:
        return self.unix.name


@dataclass
class HubSite:
    root: Path
    slurm: SlurmBed
    hub: Hub
    alice: Person
    bob: Person

    def server(self, person: Person) -> UserServer:
        return UserServer(self.hub.url, person.name, self.hub.token)


def missing_requirements() -> str | None:
    return (nodes_testbed.missing_requirements() or slurm_testbed.missing_requirements()
            or users_testbed.missing_requirements() or hub_testbed.missing_requirements()
            or (None if Path(SYSTEM_PYTHON).exists() else f"{SYSTEM_PYTHON} is missing")
            or (None if Path(LMOD_INIT).exists() else "Lmod is missing (apt-get install lmod)"))


def install_env(home: Path, uv_dir: Path, uv_cache: Path) -> dict[str, str]:
    """A login-like environment for setup-dask.sh: system PATH plus a uv, the site's CA."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update({"HOME": str(home), "PATH": f"{uv_dir}:{SYSTEM_PATH}", "LANG": "C.UTF-8",
                "UV_CACHE_DIR": str(uv_cache)})
    return env


def copy_project(target: Path) -> None:
    """The checkout's files (tracked and new, nothing ignored), as a user would clone them."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout.split("\n")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def user_install(user: UnixUser, uv_dir: Path) -> Path:
    source = user.home / "daskhpc"
    copy_project(source)
    USER_UV_CACHE.mkdir(mode=0o700, exist_ok=True)
    for folder in (source, USER_UV_CACHE):
        subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(folder)], check=True)
    result = user.run(["sh", str(source / "setup-dask.sh"), "--yes", "--backend", "venv",
                       "--python", SYSTEM_PYTHON],
                      env=install_env(user.home, uv_dir, USER_UV_CACHE))
    if result.returncode != 0:
        raise RuntimeError(f"user install failed:\n{result.stdout}\n{result.stderr}")
    return user.home / ".local/share/daskhpc/env"


def system_install(site: Path, uv_dir: Path) -> Path:
    prefix = site / "opt/daskhpc" / VERSION
    admin = site / "admin"
    admin.mkdir()
    result = subprocess.run(
        ["sh", str(REPO / "setup-dask.sh"), "--yes", "--backend", "venv", "--python",
         SYSTEM_PYTHON, "--system", "--prefix", str(prefix), "--kernel-dir",
         str(site / "share/jupyter"), "--modulefiles-dir", str(site / "modulefiles")],
        env=install_env(admin, uv_dir, Path(os.environ.get("DASKHPC_TEST_UV_CACHE",
                                                           PERSISTENT_UV_CACHE))),
        capture_output=True, text=True, timeout=900,
        stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"system install failed:\n{result.stdout}\n{result.stderr}")
    return prefix / "env"


@dataclass
class RunningCluster:
    """A cluster a user started in a terminal of their hub server."""

    person: Person
    server: UserServer
    terminal: Terminal
    screen: str  # what start-dask-cluster printed
    link: str  # the "via JupyterHub" dashboard link it printed
    host: str
    port: int
    secret: str


HUB_LINK = re.compile(r"via JupyterHub: (/user/([^/]+)/proxy/([\d.]+):(\d+)/([\w-]+)/status)")


def start_in_terminal(site: HubSite, person: Person, before: str = "") -> RunningCluster:
    """The person's server (spawned if needed), a new terminal, `start-dask-cluster` in it."""
    if not (site.hub.server(person.name) or {}).get("ready"):
        site.hub.start_server(person.name)
    server = site.server(person)
    terminal = server.terminal()
    code, screen = terminal.run(f"{before}start-dask-cluster")
    assert code == 0, screen
    found = HUB_LINK.search(screen)
    assert found, screen
    link, user, host, port, secret = found.groups()
    assert user == person.name
    return RunningCluster(person, server, terminal, screen, link, host, int(port), secret)


CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this machine cannot reach.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def log_in(browser: Any, site: HubSite, person: Person, height: int = 900) -> Any:
    """A new browser page logged in to the hub as person (PAM password), at their JupyterLab in
    its default layout (`?reset`: the layout an earlier test left, e.g. the Dask tab open, would
    otherwise be restored, and clicking the tab would close it)."""
    page = browser.new_page(viewport={"width": 1400, "height": height})
    page.set_default_timeout(180_000)  # a loaded 2-core machine runs hub, nodes and browser
    page.goto(f"{site.hub.url}/hub/login")
    page.fill("#username_input", person.name)
    page.fill("#password_input", person.unix.password)
    page.click("#login_submit")
    page.wait_for_url("**/lab**")
    page.goto(f"{site.hub.url}/user/{person.name}/lab?reset")
    page.locator(".jp-LauncherCard").first.wait_for()
    return page


def open_dask_tab(page: Any) -> None:
    """Click the Dask tab in JupyterLab's left bar (the layout is the default one)."""
    page.locator('[data-id="dask-dashboard-launcher"]').click()
    page.locator(".dask-DaskSidebar").wait_for()


def screenshot_dir() -> Path | None:
    """Where `DASKHPC_SCREENSHOTS=docs/images pytest -m browser tests/jupyterhub` saves the
    README's pictures (see docs/screenshots.md); None: none are saved."""
    folder = os.environ.get("DASKHPC_SCREENSHOTS")
    return Path(folder) if folder else None
