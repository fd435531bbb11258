"""Admin install (--system) for real: prefix, shared kernel, modulefiles, read-only for users,
exact removal. Lmod from Debian loads the modulefile; a plain user runs the wrappers."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from install_helpers import as_nobody, tree_snapshot
from testbed.install import python_only_dir, run_remove, run_setup, user_environment

from daskhpc.install import generated

pytestmark = pytest.mark.install

LMOD_INIT = Path("/usr/share/lmod/lmod/init/bash")
VERSION = "9.9"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's: readable by all, unlike a Python under /root


def system_args(site: Path) -> list[str]:
    if not Path(SYSTEM_PYTHON).exists():
        pytest.skip(f"--system needs a Python every user can run; {SYSTEM_PYTHON} is missing")
    return ["--python", SYSTEM_PYTHON, "--system", "--prefix", str(site / "opt/daskhpc" / VERSION),
            "--kernel-dir", str(site / "share/jupyter"),
            "--modulefiles-dir", str(site / "modulefiles")]


def test_system_install_modules_and_exact_removal(site: Path, tmp_path: Path) -> None:
    before = tree_snapshot(site)
    prefix = site / "opt/daskhpc" / VERSION
    # No uv on PATH (as on a fresh cluster): setup fetches it into the prefix's tools dir.
    admin = user_environment(site / "admin", [python_only_dir(tmp_path)])
    found = shutil.which("uv", path=admin["PATH"])
    if found:
        pytest.skip(f"this machine has uv in a system directory ({found}): no PATH without uv")
    result = run_setup(site / "admin", ["--yes", "--backend", "venv", *system_args(site)],
                       environment=admin)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "install uv into" in result.stdout
    assert (prefix / "tools" / "uv" / "bin" / "uv").exists()

    # Readable by all, writable only by the owner.
    for folder, directories, files in os.walk(prefix):
        for name in directories + files:
            path = Path(folder, name)
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            assert not mode & (stat.S_IWGRP | stat.S_IWOTH), path
            assert mode & stat.S_IROTH, path
    kernel = site / "share/jupyter/kernels" / f"dask-{VERSION}" / "kernel.json"
    assert f'"Python (Dask {VERSION})"' in kernel.read_text()
    assert (site / "modulefiles/daskhpc" / f"{VERSION}.lua").exists()
    assert (site / "modulefiles/daskhpc" / VERSION).read_text().startswith("#%Module")
    assert not (site / "admin").exists() or not any((site / "admin").iterdir()), \
        "nothing in the admin's home"

    # A plain user: the wrapper works, the prefix is not theirs to change.
    status = as_nobody(site, f"{prefix}/bin/dask-cluster-status --version")
    assert status.returncode == 0 and "daskhpc" in status.stdout, status.stderr
    write = as_nobody(site, f"touch {prefix}/env/bin/intruder")
    assert write.returncode != 0
    # The placeholder certificates users' kernels link to until their first cluster.
    shared = prefix / "env/share/daskhpc/no-cluster-tls"
    readable = as_nobody(site, f"cat {shared}/ca.pem {shared}/client.pem {shared}/client-key.pem")
    assert readable.returncode == 0 and "PRIVATE KEY" in readable.stdout, readable.stderr

    if LMOD_INIT.exists():
        loaded = as_nobody(site, f"source {LMOD_INIT}; module use {site}/modulefiles; "
                                 "module load daskhpc; command -v start-dask-cluster; "
                                 "echo $JUPYTER_PATH")
        assert loaded.returncode == 0, loaded.stderr
        assert loaded.stdout.split() == [f"{prefix}/bin/start-dask-cluster",
                                         str(site / "share/jupyter")]

    removed = run_remove(site / "admin", ["--yes", "--system", "--prefix", str(prefix)],
                         environment=admin)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    shutil.rmtree(site / "nobody-home", ignore_errors=True)
    assert tree_snapshot(site) == before


@pytest.mark.parametrize("flavour", ["lua", "tcl"])
def test_lmod_loads_the_highest_version_by_default(tmp_path: Path, flavour: str) -> None:
    """Two versions side by side; Lmod reads both our Lua and our Tcl modulefiles."""
    if not LMOD_INIT.exists() or not shutil.which("tclsh"):
        pytest.skip("Lmod (apt-get install lmod) is not installed")
    for version in ("1.0", "2.0"):
        prefix, data = Path("/opt/daskhpc") / version, Path(f"/opt/jupyter-{version}")
        folder = tmp_path / "modulefiles" / "daskhpc"
        folder.mkdir(parents=True, exist_ok=True)
        if flavour == "lua":
            text = generated.lmod_modulefile(prefix / "bin", data, prefix, version)
            (folder / f"{version}.lua").write_text(text)
        else:
            text = generated.tcl_modulefile(prefix / "bin", data, prefix, version)
            (folder / version).write_text(text)
    script = (f"source {LMOD_INIT}; module use {tmp_path}/modulefiles; module load daskhpc; "
              "echo $PATH; echo $JUPYTER_PATH; module load daskhpc/1.0; echo $PATH")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    default_path, jupyter_path, switched_path = result.stdout.split()
    assert default_path.startswith("/opt/daskhpc/2.0/bin:")
    assert jupyter_path == "/opt/jupyter-2.0"
    assert switched_path.startswith("/opt/daskhpc/1.0/bin:")
    assert "/opt/daskhpc/2.0/bin" not in switched_path, "one version at a time"
