"""Issue 7: on a fresh Debian machine, a plain user installs daskhpc, uses it, and removes it.

Everything is checked the way an admin would on the machine itself: testinfra (podman backend)
looks at files, modes, processes and command output inside the container. The tests of this module
share one install and run in file order: install, inspect, use, remove.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from infra_helpers import USER, InstalledMachine
from testbed.container import Container, tree_changes

pytestmark = [pytest.mark.container, pytest.mark.install, pytest.mark.timeout(900)]

HOME = f"/home/{USER}"
DATA_DIR = f"{HOME}/.local/share/daskhpc"
ENV = f"{DATA_DIR}/env"
MANIFEST = f"{DATA_DIR}/manifest.json"
BIN_DIR = f"{HOME}/bin"
WRAPPERS = ("start-dask-cluster", "stop-dask-cluster", "dask-cluster-status",
            "dask-cluster-doctor")
KERNEL = "dask"
REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "envs" / "requirements.lock"

# Files the user had before installing; setup and remove must leave every one of them as it was.
DECOYS = {
    f"{BIN_DIR}/my-tool": "#!/bin/sh\necho mine\n",
    f"{HOME}/.local/share/jupyter/kernels/my-kernel/kernel.json":
        '{"argv": ["python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],'
        ' "display_name": "Mine", "language": "python"}\n',
    f"{HOME}/.config/dask/my-settings.yaml": "distributed:\n  admin:\n    tick:\n      limit: 5s\n",
    f"{HOME}/.local/share/other-app/data.txt": "not daskhpc's\n",
    f"{HOME}/.cache/other-app/blob": "cached by someone else\n",
}

# Runs on the env's Python: installed versions, and which lock lines apply to this Python.
_ENV_REPORT = """
import json, sys
from importlib.metadata import distributions
from packaging.markers import Marker
from packaging.utils import canonicalize_name
lock = json.load(sys.stdin)
installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
applies = [[n, v] for n, v, m in lock if not m or Marker(m).evaluate()]
json.dump({"installed": installed, "applies": applies}, sys.stdout)
"""

_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*(.*?))?\s*\\?$")


def locked_packages() -> list[tuple[str, str, str]]:
    """(name, version, marker) for every pinned line of envs/requirements.lock."""
    found = []
    for line in LOCK.read_text().splitlines():
        match = _LOCK_LINE.match(line)
        if match:
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            found.append((name, match.group(2), match.group(3) or ""))
    return found


def manifest_paths(manifest: dict[str, Any]) -> set[str]:
    return {str(item["path"]) for item in manifest["items"]}


def covered(path: str, owned: set[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in owned)


class Install(InstalledMachine):
    def home_tree(self) -> dict[str, str]:
        return self.container.file_tree([HOME])


@pytest.fixture(scope="module")
def install(fresh_container: Container) -> Install:
    state = Install(fresh_container)
    source = fresh_container.copy_project(REPO, USER)
    for path, text in DECOYS.items():
        mode = 0o755 if path.startswith(f"{BIN_DIR}/") else 0o644
        fresh_container.write_file(path, text, user=USER, mode=mode)
    state.before = state.home_tree()
    # A login shell, from the copy, as the user would type it after downloading the project.
    state.setup_output = state.as_user(f"cd {source} && sh setup-dask.sh --yes", timeout=800)
    return state


def test_env_has_the_locked_versions(install: Install) -> None:
    env_python = install.user_host.file(f"{ENV}/bin/python")
    assert env_python.exists, install.setup_output
    lock = locked_packages()
    report = json.loads(install.as_user(
        f"{ENV}/bin/python -c {shlex.quote(_ENV_REPORT)} <<'EOF'\n{json.dumps(lock)}\nEOF"
    ))
    installed: dict[str, str] = report["installed"]
    wrong = {name: (version, installed.get(name)) for name, version in report["applies"]
             if installed.get(name) != version}
    assert not wrong, f"lock version vs installed: {wrong}"
    # pip and setuptools are what `python -m venv` seeds every venv with, not part of the stack.
    seeded = {"daskhpc", "pip", "setuptools"}
    extra = set(installed) - {name for name, _ in report["applies"]} - seeded
    assert not extra, f"installed but not in the lock: {sorted(extra)}"
    assert "daskhpc" in installed, "daskhpc itself is not installed in the env"


def test_kernel_is_listed_for_the_user_and_runs_the_env(install: Install) -> None:
    # Listing imports IPython, which makes ~/.ipython, and jupyter marks ~/.jupyter/migrated:
    # the probe's doing, not setup's, so it gets throw-away IPython and Jupyter config dirs and
    # the home stays comparable with its snapshot (kernels are still found in the data dir).
    listed = json.loads(install.as_user(
        f"scratch=$(mktemp -d); IPYTHONDIR=$scratch/ipython JUPYTER_CONFIG_DIR=$scratch/jupyter "
        f"{ENV}/bin/jupyter kernelspec list --json"))
    spec = listed["kernelspecs"].get(KERNEL)
    assert spec, f"kernel {KERNEL!r} missing from {sorted(listed['kernelspecs'])}"
    assert spec["resource_dir"].startswith(f"{HOME}/.local/share/jupyter/kernels/")
    assert spec["spec"]["display_name"] == "Python (Dask)"
    kernel_python = spec["spec"]["argv"][0]
    assert install.user_host.file(kernel_python).exists
    assert install.container.sys_prefix(kernel_python, USER) == \
        install.container.sys_prefix(f"{ENV}/bin/python", USER)
    assert "my-kernel" in listed["kernelspecs"], "the user's own kernel disappeared"


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_wrapper_is_executable_and_on_a_login_shells_path(install: Install, wrapper: str) -> None:
    path = f"{BIN_DIR}/{wrapper}"
    wrapper_file = install.user_host.file(path)
    assert wrapper_file.is_file
    assert wrapper_file.user == USER
    assert wrapper_file.mode & 0o111 == 0o111
    assert wrapper_file.mode & 0o022 == 0, oct(wrapper_file.mode)
    assert install.as_user(f"command -v {wrapper}").strip() == path
    assert install.as_user(f"{wrapper} --help").strip()


def test_config_files_are_in_place_with_their_modes(install: Install) -> None:
    site_packages = install.as_user(
        f"{ENV}/bin/python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])'"
    ).strip()
    hooks = install.user_host.file(site_packages).listdir()
    assert any(name.endswith(".pth") and "daskhpc" in name for name in hooks), hooks
    for path in (f"{ENV}/etc/dask/daskhpc.yaml",
                 f"{ENV}/etc/jupyter/jupyter_server_config.py"):
        config = install.user_host.file(path)
        assert config.is_file, f"{path} missing"
        assert config.user == USER
        assert config.mode & 0o022 == 0, f"{path} is writable by others: {oct(config.mode)}"
    assert install.user_host.file(MANIFEST).mode & 0o022 == 0


def test_manifest_lists_everything_setup_created(install: Install) -> None:
    manifest = json.loads(install.user_host.file(MANIFEST).content_string)
    owned = manifest_paths(manifest)
    for path in owned:
        assert install.user_host.file(path).exists, f"manifest lists {path}, which is missing"
    created = install.home_tree().keys() - install.before.keys()
    unlisted = sorted(p for p in created if p != MANIFEST and not covered(p, owned))
    assert not unlisted, f"setup created files the manifest does not list: {unlisted[:20]}"
    for decoy in DECOYS:
        assert decoy not in owned


def test_a_cluster_starts_computes_and_stops_without_leftovers(install: Install) -> None:
    install.as_user("start-dask-cluster", timeout=300)
    try:
        running = install.host.process.filter(user=USER)
        assert running, "start-dask-cluster returned but no process of the user runs"
        # The notebooks' line, on the env's Python (what the kernel runs).
        assert install.container.client_computes(f"{ENV}/bin/python", USER) == "5050"
    finally:
        install.as_user("stop-dask-cluster", timeout=300)
    left = [f"{p.pid} {p.args}" for p in install.host.process.filter(user=USER)]
    assert not left, f"processes left after stop-dask-cluster: {left}"


def test_remove_takes_every_manifest_item_and_keeps_the_decoys(install: Install) -> None:
    owned = manifest_paths(json.loads(install.user_host.file(MANIFEST).content_string))
    install.as_user(f"sh {HOME}/daskhpc/remove-dask.sh --yes", timeout=300)
    left = sorted(path for path in owned if install.user_host.file(path).exists)
    assert not left, f"manifest items still there after remove: {left}"
    for path, text in DECOYS.items():
        assert install.user_host.file(path).content_string == text


def test_the_home_is_back_to_its_state_before_setup(install: Install) -> None:
    changes = tree_changes(install.before, install.home_tree())
    assert not changes, "the home differs from before setup:\n" + "\n".join(changes[:80])


def test_setup_trusts_the_system_ca_store_alone(install: Install) -> None:
    """Sites whose HTTPS goes through their own CA put it in the system store; not every site
    also exports SSL_CERT_FILE. Another user, same machine, without that variable."""
    other = "bob"
    source = install.container.copy_project(REPO, other)
    result = install.container.exec(f"cd {source} && env -u SSL_CERT_FILE sh setup-dask.sh --yes",
                                    user=other, timeout=800)
    assert result.returncode == 0, result.stderr[-2000:]
