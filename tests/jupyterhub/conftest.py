"""One site for every JupyterHub test of the session: a 2-compute-node Slurm, two real users
and a hub whose SlurmSpawner runs their servers as job steps.

- `alice` (a random name ending in "a") installed daskhpc herself: `sh setup-dask.sh` in her
  home; her server runs from ~/.local/share/daskhpc/env.
- `bob` (ends in "b") has nothing of his own: the admin's `setup-dask.sh --system` install; his
  job script does `module load daskhpc` (kernel on JUPYTER_PATH) and his server runs from the
  prefix's environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from server_api import Terminal, UserServer
from testbed import hub as hub_testbed
from testbed import nodes as nodes_testbed
from testbed import slurm as slurm_testbed
from testbed import users as users_testbed
from testbed.hub import Hub
from testbed.install import PASSED_THROUGH, PERSISTENT_UV_CACHE, SYSTEM_PATH, uv_bin_dir
from testbed.nodes import NodeBed
from testbed.slurm import SlurmBed
from testbed.users import UnixUser, create_user, remove_user

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


@pytest.fixture(scope="session")
def hub_site() -> Iterator[HubSite]:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    # World-traversable (pytest's tmp dirs are 0700): users read slurm.conf and the munge
    # socket, and run the site's environment.
    root = Path(tempfile.mkdtemp(prefix="daskhpc-hub-", dir="/tmp"))
    root.chmod(0o755)
    made: list[UnixUser] = []
    nodes = NodeBed(root / "nodes", count=3)
    slurm: SlurmBed | None = None
    hub: Hub | None = None
    try:
        alice, bob = create_user("a"), create_user("b")
        made += [alice, bob]
        uv_source = uv_bin_dir(root / "uv-link")
        if uv_source is None:
            pytest.skip("the hub tests install with uv; none found")
        uv_dir = root / "uv-bin"  # a copy: the runner's own may sit under a private folder
        uv_dir.mkdir()
        shutil.copy2((uv_source / "uv").resolve(), uv_dir / "uv")
        nodes.start()  # before the installs load the machine
        slurm = SlurmBed(nodes, root / "slurm").start()
        with ThreadPoolExecutor(2) as pool:
            alice_env = pool.submit(user_install, alice, uv_dir)
            bob_env = pool.submit(system_install, root, uv_dir)
            # A login shell (the terminal's) resets PATH: Bob loads the module himself there.
            module = f"module use {root / 'modulefiles'}; module load daskhpc"
            people = (Person(alice, alice_env.result(), "", ""),
                      Person(bob, bob_env.result(), f"set +u; source {LMOD_INIT}; {module}; set -u",
                             module))
        hub = Hub(slurm, root / "hub")
        for person in people:
            # As a site would write it for users' own installs: the job script expands $HOME.
            env = (f"$HOME/{person.env.relative_to(person.unix.home)}"
                   if person.env.is_relative_to(person.unix.home) else str(person.env))
            hub.add_user(person.name, env, person.prologue)
        hub.start()
        yield HubSite(root, slurm, hub, *people)
    finally:
        if hub is not None:
            hub.stop()
        if slurm is not None:
            for job in slurm.jobs():
                slurm.run(["scancel", job.split()[0]])
        for user in made:
            remove_user(user)
        if slurm is not None:
            slurm.stop()
        nodes.stop()
        shutil.rmtree(root, ignore_errors=True)


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


@pytest.fixture(scope="session")
def alice_cluster(hub_site: HubSite) -> RunningCluster:
    """Alice's server and the cluster she started from its terminal (kept for the session)."""
    return start_in_terminal(hub_site, hub_site.alice)


@pytest.fixture(scope="session")
def bob_cluster(hub_site: HubSite) -> RunningCluster:
    """Bob's server and cluster: he loads the site's module in the terminal first."""
    return start_in_terminal(hub_site, hub_site.bob, f"{hub_site.bob.module_commands}; ")


CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this machine cannot reach.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium driven by Playwright (its own browser download does not work here).
    Module-scoped: while Playwright's sync API runs, the main thread counts as inside an event
    loop, and later tests' asyncio.run() would fail."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"the browser tests need {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the browser tests need playwright (tests/requirements.txt)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


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
