"""A real daskhpc install (venv backend, PyPI) in a throw-away HOME, as a user would have it.

`install_into(home)` runs `sh setup-dask.sh --yes --backend venv` exactly as the README says;
the result tells where everything went and gives the environment variables to act as that
user (HOME, PATH with the wrappers, XDG_*). Downloads are cached across sessions in
UV_CACHE_DIR (default below), so only the first session on a machine pays for them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
PERSISTENT_UV_CACHE = "/root/.cache/uv-daskhpc-tests" if os.geteuid() == 0 else str(
    Path.home() / ".cache" / "uv-daskhpc-tests")
# Variables a user's login would not have but the install needs here (proxy CA, caches).
PASSED_THROUGH = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PIP_CERT", "LANG",
                  "UV_INDEX_URL", "UV_DEFAULT_INDEX", "PIP_INDEX_URL", "TMPDIR")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def user_environment(home: Path, extra_path: Sequence[Path] = ()) -> dict[str, str]:
    """A clean environment for a user whose home is `home` (nothing of the test runner's)."""
    environment = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    path = [str(folder) for folder in extra_path] + [SYSTEM_PATH]
    environment.update({
        "HOME": str(home),
        "USER": os.environ.get("USER", "root"),
        "PATH": ":".join(path),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "UV_CACHE_DIR": os.environ.get("DASKHPC_TEST_UV_CACHE", PERSISTENT_UV_CACHE),
    })
    return environment


def python_only_dir(base: Path) -> Path:
    """A folder holding only `python3` (the interpreter running the tests), for a PATH with a
    Python and nothing else of the runner's: its own bin directory also holds uv, jupyter and
    ruff, which a user's machine need not have."""
    folder = base / "python-bin"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "python3"
    if not link.is_symlink():
        link.symlink_to(Path(sys.executable).resolve())
    return folder


def uv_bin_dir(base: Path) -> Optional[Path]:
    """A folder holding only `uv` (a link to the test machine's), so setup finds uv on PATH
    as it would on a machine that has it, without the rest of the runner's PATH. None if the
    machine has no uv (setup then fetches it into its tools dir)."""
    candidates = [Path(sys.executable).with_name("uv"), Path(sys.base_prefix) / "bin" / "uv"]
    found = shutil.which("uv")
    candidates += [Path(found)] if found else []
    real = next((path for path in candidates if path.exists()), None)
    if real is None:
        return None
    folder = base / "uv-bin"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "uv"
    if not link.is_symlink():
        link.symlink_to(real)
    return folder


def setup_environment(home: Path) -> dict[str, str]:
    """The user's clean environment plus a python3 and (when the machine has one) uv."""
    extra = [python_only_dir(home.parent)]
    uv_dir = uv_bin_dir(home.parent)
    return user_environment(home, [*extra, uv_dir] if uv_dir else extra)


@dataclass(frozen=True)
class DaskInstall:
    home: Path
    prefix: Path  # the environment (a link to the current build)
    python: Path  # the environment's Python
    bin_dir: Path  # start-dask-cluster, stop-dask-cluster, dask-cluster-status
    kernel_name: str
    kernel_dir: Path  # <jupyter data dir>/kernels/<kernel_name>
    setup_output: str

    def env(self) -> dict[str, str]:
        """Environment variables to run the wrappers or the kernel as this user."""
        return user_environment(self.home, [self.bin_dir])

    def wrapper(self, name: str) -> Path:
        return self.bin_dir / name


def run_setup(home: Path, args: Sequence[str] = (), timeout: float = 900,
              environment: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    env = environment or setup_environment(home)
    return subprocess.run(["sh", str(REPO / "setup-dask.sh"), *args], env=env, text=True,
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def run_remove(home: Path, args: Sequence[str] = (),
               environment: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    env = environment or setup_environment(home)
    return subprocess.run(["sh", str(REPO / "remove-dask.sh"), *args], env=env, text=True,
                          capture_output=True, timeout=300, stdin=subprocess.DEVNULL)


def install_into(home: Path, kernel_name: str = "dask") -> DaskInstall:
    home.mkdir(parents=True, exist_ok=True)
    result = run_setup(home, ["--yes", "--backend", "venv", "--kernel-name", kernel_name])
    if result.returncode != 0:
        raise RuntimeError(f"setup-dask.sh failed ({result.returncode}):\n"
                           f"{result.stdout}\n{result.stderr}")
    prefix = home / ".local" / "share" / "daskhpc" / "env"
    return DaskInstall(
        home=home,
        prefix=prefix,
        python=prefix / "bin" / "python",
        bin_dir=home / "bin",
        kernel_name=kernel_name,
        kernel_dir=home / ".local" / "share" / "jupyter" / "kernels" / kernel_name,
        setup_output=result.stdout + result.stderr,
    )
