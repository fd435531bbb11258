"""Bad input: one line saying what is wrong and what to do, exit != 0, nothing changed."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from install_helpers import tree_snapshot
from testbed.install import REPO, run_remove, run_setup


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    (home / ".bashrc").write_text("export EDITOR=vi\n")
    return home


def refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_no_usable_python_is_one_line(tmp_path: Path) -> None:
    tools = tmp_path / "tools"  # only what the sh bootstrap itself calls: no python, no conda
    tools.mkdir()
    for name in ("dirname", "basename"):
        (tools / name).symlink_to(shutil.which(name) or f"/usr/bin/{name}")
    result = subprocess.run(["/bin/sh", str(REPO / "setup-dask.sh"), "--yes"],
                            env={"HOME": str(tmp_path), "PATH": str(tools)},
                            capture_output=True, text=True, timeout=60)
    refused(result, "no usable Python", "python3 >= 3.9")
    assert result.returncode == 3
    assert sorted(os.listdir(tmp_path)) == ["tools"]


@pytest.mark.parametrize("argv, words", [
    (["--bogus"], ["--bogus", "--help"]),
    (["--kernel-dir", "/tmp/k"], ["--kernel-dir", "--system"]),
    (["--system", "--add-to-path"], ["--add-to-path", "modulefile"]),
    (["--backend", "micromamba"], ["micromamba is not on PATH"]),
    (["--kernel-name", "../evil"], ["--kernel-name", "plain name"]),
])
def test_bad_options_change_nothing(home: Path, argv: list[str], words: list[str]) -> None:
    before = tree_snapshot(home)
    refused(run_setup(home, ["--yes", *argv]), *words)
    assert tree_snapshot(home) == before


def test_prefix_below_a_file_is_refused(home: Path) -> None:
    (home / "afile").write_text("x")
    before = tree_snapshot(home)
    refused(run_setup(home, ["--yes", "--backend", "venv", "--prefix", str(home / "afile/env")]),
            "is not a directory")
    assert tree_snapshot(home) == before


def test_existing_foreign_env_is_not_touched(home: Path) -> None:
    (home / "myenv" / "bin").mkdir(parents=True)
    before = tree_snapshot(home)
    refused(run_setup(home, ["--yes", "--backend", "venv", "--prefix", str(home / "myenv")]),
            "was not made by daskhpc")
    assert tree_snapshot(home) == before


def test_foreign_wrapper_in_bin_is_not_overwritten(home: Path) -> None:
    (home / "bin" / "start-dask-cluster").write_text("#!/bin/sh\necho site script\n")
    before = tree_snapshot(home)
    refused(run_setup(home, ["--yes", "--backend", "venv"]), "start-dask-cluster",
            "was not installed by daskhpc")
    assert tree_snapshot(home) == before


def test_dry_run_prints_the_plan_and_changes_nothing(home: Path) -> None:
    before = tree_snapshot(home)
    result = run_setup(home, ["--dry-run", "--backend", "venv", "--add-to-path"])
    assert result.returncode == 0, result.stderr
    assert "build the environment" in result.stdout
    assert f"write the wrapper {home}/bin/start-dask-cluster" in result.stdout
    assert "dry run: nothing was changed" in result.stdout
    assert tree_snapshot(home) == before


def test_remove_without_install_says_so(home: Path) -> None:
    before = tree_snapshot(home)
    result = run_remove(home, ["--yes"])
    assert result.returncode == 0 and "nothing to remove" in result.stdout
    assert tree_snapshot(home) == before


def test_system_install_refuses_a_python_other_users_cannot_run(home: Path) -> None:
    real = Path(os.path.realpath(sys.executable))
    if all(folder.stat().st_mode & stat.S_IXOTH for folder in real.parents):
        pytest.skip(f"the test runner's Python ({real}) is readable by everyone here")
    before = tree_snapshot(home)
    prefix = home / "opt" / "daskhpc"
    refused(run_setup(home, ["--yes", "--backend", "venv", "--system", "--prefix", str(prefix),
                             "--python", sys.executable]),
            "other users cannot read", "--python")
    assert tree_snapshot(home) == before


def bootstrap_tools(folder: Path) -> Path:
    """A PATH with only what the sh bootstrap itself needs: no python, no conda."""
    folder.mkdir()
    for name in ("dirname", "basename"):
        (folder / name).symlink_to(shutil.which(name) or f"/usr/bin/{name}")
    return folder


@pytest.mark.parametrize("variable", ["CONDA_EXE", "MAMBA_EXE"])
def test_bootstrap_uses_a_conda_installations_python(tmp_path: Path, variable: str) -> None:
    base = tmp_path / "conda" / "bin"
    base.mkdir(parents=True)
    (base / "conda").write_text("#!/bin/sh\n")
    (base / "conda").chmod(0o755)
    (base / "python").symlink_to(sys.executable)
    result = subprocess.run(["/bin/sh", str(REPO / "remove-dask.sh"), "--version"],
                            env={"HOME": str(tmp_path), variable: str(base / "conda"),
                                 "PATH": str(bootstrap_tools(tmp_path / "t"))},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("daskhpc ")


def test_remove_without_python_names_itself(tmp_path: Path) -> None:
    result = subprocess.run(["/bin/sh", str(REPO / "remove-dask.sh")],
                            env={"HOME": str(tmp_path),
                                 "PATH": str(bootstrap_tools(tmp_path / "t"))},
                            capture_output=True, text=True, timeout=60)
    assert refused(result, "no usable Python").startswith("remove-dask.sh: error:")


def test_unwritable_prefix_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to run setup as user 'nobody' (root may write anywhere)")
    site = Path(tempfile.mkdtemp(prefix="daskhpc-nobody-", dir="/tmp"))
    try:
        # The checkout as an admin would share it: readable by all, wherever the runner's is.
        checkout = site / "daskhpc"
        shutil.copytree(REPO, checkout, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", ".*_cache", ".work"))
        home = site / "home"
        home.mkdir()
        for folder, directories, files in os.walk(site):
            for name in [".", *directories, *files]:
                Path(folder, name).chmod(0o755)
        os.chown(home, 65534, 65534)
        before = tree_snapshot(home)
        result = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh",
             str(checkout / "setup-dask.sh"), "--yes", "--backend", "venv", "--python",
             "/usr/bin/python3", "--prefix", "/usr/daskhpc-test/env"],
            env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=120)
        refused(result, "cannot write to /usr", "/usr/daskhpc-test/env")
        assert tree_snapshot(home) == before
        assert not Path("/usr/daskhpc-test").exists()
    finally:
        shutil.rmtree(site, ignore_errors=True)
