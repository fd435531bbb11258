"""Issue 8: an admin installs daskhpc once for everyone; plain users `module load` and use it.

On a fresh Debian machine with Debian's Lmod: root installs into a versioned prefix with
modulefiles; a plain user loads the module, runs a cluster with state in their own home and cannot
change the shared install; uninstall puts the machine's shared paths back as they were. The
tests of this module share one install and run in file order.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from infra_helpers import USER, InstalledMachine
from testbed.container import Container, tree_changes

pytestmark = [pytest.mark.container, pytest.mark.install, pytest.mark.timeout(900)]

VERSION = "0.1.0"
PREFIX = f"/opt/daskhpc/{VERSION}"
MODULEFILES = "/opt/modulefiles"
SYSTEM_JUPYTER = "/usr/local/share/jupyter"
MANIFEST = f"{PREFIX}/daskhpc-manifest.json"
WRAPPERS = ("start-dask-cluster", "stop-dask-cluster", "dask-cluster-status",
            "dask-cluster-doctor")
REPO = Path(__file__).resolve().parents[2]
# Where a system install may write; the snapshot of these before and after uninstall must match.
SHARED_ROOTS = ("/opt", "/usr/local", "/usr/share/jupyter", "/etc", "/root")
# What the admin had before: other modules and kernels stay through install and uninstall.
DECOYS = {
    f"{MODULEFILES}/othertool/1.0.lua": 'prepend_path("PATH", "/opt/othertool/1.0/bin")\n',
    f"{SYSTEM_JUPYTER}/kernels/site-python/kernel.json":
        '{"argv": ["python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],'
        ' "display_name": "Site Python", "language": "python"}\n',
}
LOAD = f"module use {MODULEFILES} && module load daskhpc"


class SystemInstall(InstalledMachine):
    def as_user(self, script: str, timeout: float = 600) -> str:
        """A plain user's login shell (Lmod initialised) with the module loaded."""
        return super().as_user(f"{LOAD} && {script}", timeout)

    def shared_tree(self) -> dict[str, str]:
        return self.container.file_tree(SHARED_ROOTS)

    def env_python(self) -> str:
        manifest = json.loads(self.host.file(MANIFEST).content_string)
        return f"{manifest['env']['link']}/bin/python"


@pytest.fixture(scope="module")
def system_install(fresh_container: Container) -> SystemInstall:
    state = SystemInstall(fresh_container)
    source = fresh_container.copy_project(REPO, "root")
    for path, text in DECOYS.items():
        fresh_container.write_file(path, text)
    state.before = state.shared_tree()
    state.setup_output = fresh_container.check(
        f"cd {source} && sh setup-dask.sh --yes --system --prefix {PREFIX} "
        f"--python /usr/bin/python3 --modulefiles-dir {MODULEFILES}",
        timeout=800,
    )
    return state


def test_module_load_puts_the_wrappers_on_path(system_install: SystemInstall) -> None:
    available = system_install.container.check(
        f"module use {MODULEFILES} && module avail daskhpc 2>&1", user=USER)
    assert f"daskhpc/{VERSION}" in available, available
    for wrapper in WRAPPERS:
        found = system_install.as_user(f"command -v {wrapper}").strip()
        assert found.startswith(f"{PREFIX}/"), f"{wrapper} resolves to {found!r}"


def test_the_kernel_is_visible_to_a_plain_user(system_install: SystemInstall) -> None:
    env_python = system_install.env_python()
    listed = json.loads(system_install.as_user(f"{env_python} -m jupyter kernelspec list --json"))
    ours = [name for name, spec in listed["kernelspecs"].items()
            if spec["resource_dir"].startswith(f"{SYSTEM_JUPYTER}/kernels/")
            and system_install.container.sys_prefix(spec["spec"]["argv"][0], USER)
            .startswith(f"{PREFIX}/")]
    assert ours, f"no kernel of {PREFIX} in the user's kernelspec list: {listed}"
    assert "site-python" in listed["kernelspecs"], "the site's own kernel disappeared"


def test_the_user_cannot_change_the_shared_install(system_install: SystemInstall) -> None:
    writable = system_install.container.check(
        f"find {PREFIX} {MODULEFILES}/daskhpc -writable", user=USER)
    assert not writable.strip(), f"{USER} can write: {writable.splitlines()[:10]}"
    unreadable = system_install.container.check(f"find {PREFIX} ! -readable", user=USER)
    assert not unreadable.strip(), f"{USER} cannot read: {unreadable.splitlines()[:10]}"
    open_modes = system_install.container.check(f"find {PREFIX} ! -type l -perm /022")
    assert not open_modes.strip(), f"group/other-writable: {open_modes.splitlines()[:10]}"
    attempt = system_install.container.exec(f"touch {PREFIX}/bin/intruder", user=USER)
    assert attempt.returncode != 0


def test_a_user_runs_a_cluster_with_state_in_their_home(system_install: SystemInstall) -> None:
    system_install.as_user("start-dask-cluster", timeout=300)
    try:
        assert system_install.user_host.file(f"/home/{USER}/.local/state/daskhpc").is_directory
        # What the kernel runs: the env's Python, which needs no module loaded.
        python = system_install.env_python()
        assert system_install.container.client_computes(python, USER) == "5050"
    finally:
        system_install.as_user("stop-dask-cluster", timeout=300)
    left = [f"{p.pid} {p.args}" for p in system_install.host.process.filter(user=USER)]
    assert not left, f"processes left after stop-dask-cluster: {left}"


def test_two_versions_side_by_side_the_highest_is_the_default(
        system_install: SystemInstall) -> None:
    newer = "0.2.0"
    newer_prefix = f"/opt/daskhpc/{newer}"
    container = system_install.container
    container.check(
        f"cd /root/daskhpc && sh setup-dask.sh --yes --system --prefix {newer_prefix} "
        f"--python /usr/bin/python3 --modulefiles-dir {MODULEFILES}",
        timeout=800,
    )
    try:
        available = container.check(f"module use {MODULEFILES} && module avail daskhpc 2>&1",
                                    user=USER)
        assert f"daskhpc/{VERSION}" in available and f"daskhpc/{newer}" in available, available
        default = system_install.as_user("command -v start-dask-cluster").strip()
        assert default.startswith(f"{newer_prefix}/"), f"default module gives {default}"
        pinned = container.check(f"module use {MODULEFILES} && module load daskhpc/{VERSION} "
                                 "&& command -v start-dask-cluster", user=USER).strip()
        assert pinned.startswith(f"{PREFIX}/"), f"daskhpc/{VERSION} gives {pinned}"
        kernels = system_install.host.file(f"{SYSTEM_JUPYTER}/kernels").listdir()
        assert {f"dask-{VERSION}", f"dask-{newer}"} <= set(kernels), kernels
    finally:
        container.check(f"sh /root/daskhpc/remove-dask.sh --yes --system --prefix {newer_prefix}",
                        timeout=300)
    # Removing one version leaves the other whole and the default again.
    assert not system_install.host.file(newer_prefix).exists
    remaining = system_install.as_user("command -v start-dask-cluster").strip()
    assert remaining.startswith(f"{PREFIX}/"), remaining


def test_uninstall_leaves_the_shared_paths_as_before(system_install: SystemInstall) -> None:
    system_install.container.check(
        f"sh /root/daskhpc/remove-dask.sh --yes --system --prefix {PREFIX}", timeout=300)
    changes = tree_changes(system_install.before, system_install.shared_tree())
    assert not changes, "shared paths differ from before the install:\n" + "\n".join(changes[:80])
