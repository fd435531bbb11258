"""Killed installs, re-runs and uninstall, for real (venv backend, PyPI) in a throw-away HOME."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from install_helpers import make_home, tree_snapshot
from testbed.install import REPO, run_remove, run_setup, setup_environment, user_environment

pytestmark = pytest.mark.install

SETUP = ["--yes", "--backend", "venv", "--add-to-path"]


def builds(home: Path) -> list[Path]:
    return sorted((home / ".local/share/daskhpc/env.builds").glob("*"))


def start_and_kill_during_build(home: Path, extra: list[str], known: int,
                                signal_number: int = signal.SIGKILL) -> str:
    """Run setup and signal its whole process group (installer, uv, compileall) once a new
    build directory holds packages: what Ctrl-C (SIGINT) or a killed job (SIGKILL) does.
    Returns setup's stderr."""
    process = subprocess.Popen(["sh", str(REPO / "setup-dask.sh"), *SETUP, *extra],
                               env=setup_environment(home), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and process.poll() is None:
            fresh = builds(home)[known:]
            packages = [p for b in fresh for p in b.glob("lib/python3*/site-packages/*")]
            if len(packages) > 20:
                break
            time.sleep(0.2)
        assert process.poll() is None, "setup finished before it could be killed"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal_number)
        _, errors = process.communicate(timeout=300)
    return errors


def kernel_argv(home: Path) -> list[str]:
    spec = home / ".local/share/jupyter/kernels/dask/kernel.json"
    return json.loads(spec.read_text())["argv"]


def test_kill_rerun_update_kill_and_remove(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    before = tree_snapshot(home)
    env_link = home / ".local/share/daskhpc/env"
    wrapper = home / "bin" / "dask-cluster-status"

    # Ctrl-C during the first build: one line, and the half-built environment is gone.
    errors = start_and_kill_during_build(home, [], known=0, signal_number=signal.SIGINT)
    assert errors.strip().splitlines() == [
        "setup-dask.sh: error: interrupted; the previous install is unchanged; "
        "run setup-dask.sh again to finish"]
    assert builds(home) == []

    # Killed during the first build: nothing points at the half-built environment.
    start_and_kill_during_build(home, [], known=0)
    assert len(builds(home)) == 1
    assert not env_link.exists() and not env_link.is_symlink()
    assert not wrapper.exists()
    assert not (home / ".local/share/jupyter/kernels/dask").exists()
    assert (home / ".bashrc").read_text() == "export EDITOR=vi\nalias ll='ls -l'\n"

    # A re-run succeeds and discards the half-built environment.
    result = run_setup(home, SETUP)
    assert result.returncode == 0, result.stdout + result.stderr
    [build] = builds(home)
    assert env_link.resolve() == build
    assert kernel_argv(home)[0] == str(env_link / "bin" / "python")
    version = subprocess.run([str(wrapper), "--version"], capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0 and "daskhpc" in version.stdout
    assert (home / ".bashrc").read_text().count("daskhpc") == 1

    # An --update killed mid-way leaves the working environment in place.
    start_and_kill_during_build(home, ["--update"], known=1)
    assert len(builds(home)) == 2
    assert env_link.resolve() == build
    again = subprocess.run([str(wrapper), "--version"], capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0 and "daskhpc" in again.stdout

    # A completed --update: a new build with the env's config, the old build gone.
    result = run_setup(home, [*SETUP, "--update"])
    assert result.returncode == 0, result.stdout + result.stderr
    [new_build] = builds(home)
    assert new_build != build and env_link.resolve() == new_build
    assert (new_build / "etc" / "dask" / "daskhpc.yaml").exists()

    # A cluster's state is daskhpc's own: remove refuses while a cluster runs, takes it after.
    user = user_environment(home, [home / "bin"])
    started = subprocess.run(["start-dask-cluster"], env=user, capture_output=True, text=True,
                             timeout=300)
    assert started.returncode == 0, started.stderr
    refused = run_remove(home, ["--yes"])
    assert refused.returncode != 0
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "stop-dask-cluster --all" in refused.stderr
    assert env_link.resolve() == new_build
    stopped = subprocess.run(["stop-dask-cluster"], env=user, capture_output=True, text=True,
                             timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    # The doctor runs from the installed environment and leaves nothing behind.
    doctor = subprocess.run(["dask-cluster-doctor"], env=user, capture_output=True, text=True,
                            timeout=120)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "no problem found" in doctor.stderr

    # Remove: the HOME is as it was, decoys included.
    removed = run_remove(home, ["--yes"])
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert tree_snapshot(home) == before
    assert run_remove(home, ["--yes"]).returncode == 0
