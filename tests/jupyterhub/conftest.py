"""One site for every JupyterHub test of the session: a 2-compute-node Slurm, two real users
and a hub whose SlurmSpawner runs their servers as job steps.

- `alice` (a random name ending in "a") installed daskhpc herself: `sh setup-dask.sh` in her
  home; her server runs from ~/.local/share/daskhpc/env.
- `bob` (ends in "b") has nothing of his own: the admin's `setup-dask.sh --system` install; his
  job script does `module load daskhpc` (kernel on JUPYTER_PATH) and his server runs from the
  prefix's environment.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hub_site import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LMOD_INIT,
    HubSite,
    Person,
    RunningCluster,
    missing_requirements,
    start_in_terminal,
    system_install,
    user_install,
)
from testbed.hub import Hub
from testbed.install import uv_bin_dir
from testbed.nodes import NodeBed
from testbed.slurm import SlurmBed
from testbed.users import UnixUser, create_user, remove_user


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


@pytest.fixture(scope="session")
def alice_cluster(hub_site: HubSite) -> RunningCluster:
    """Alice's server and the cluster she started from its terminal (kept for the session)."""
    return start_in_terminal(hub_site, hub_site.alice)


@pytest.fixture(scope="session")
def bob_cluster(hub_site: HubSite) -> RunningCluster:
    """Bob's server and cluster: he loads the site's module in the terminal first."""
    return start_in_terminal(hub_site, hub_site.bob, f"{hub_site.bob.module_commands}; ")


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


