"""venv backend: a virtual environment made and filled by uv from envs/requirements.lock
(hash-checked, bytecode compiled). uv comes from PATH, else from the toolkit's own tools dir
(a venv with uv from PyPI); plain venv + pip is the last resort."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional


def uv_in_tools_dir(tools_dir: Path) -> Path:
    return tools_dir / "uv" / "bin" / "uv"


def find_uv(tools_dir: Path) -> Optional[str]:
    on_path = shutil.which("uv")
    if on_path:
        return on_path
    own = uv_in_tools_dir(tools_dir)
    return str(own) if own.exists() else None


def install_uv_commands(python: str, tools_dir: Path) -> list[list[str]]:
    """A small venv of our own holding uv from PyPI (works whether or not the bootstrap
    Python has pip: venv brings its own through ensurepip)."""
    tool_venv = tools_dir / "uv"
    return [
        [python, "-m", "venv", str(tool_venv)],
        [str(tool_venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", "uv"],
    ]


def compile_command(build: Path, folder: Optional[Path] = None) -> list[str]:
    """Bytecode for everything but the packages' own test suites (a third of the files, never
    imported by users): `import distributed` takes 0.4 s instead of 2.9 s, and a --system env,
    which users cannot write to, would otherwise never get any. Already compiled files are
    skipped, so re-running it after a package update is cheap."""
    return [str(build / "bin" / "python"), "-m", "compileall", "-q", "-j", "0",
            "-x", "/tests?/", str(folder or build / "lib")]


def build_commands_uv(uv: str, python: str, build: Path, lock: Path) -> list[list[str]]:
    """uv pip sync: the lock is complete (every package pinned and hashed), so install exactly
    it with no resolution."""
    build_python = str(build / "bin" / "python")
    return [
        [uv, "venv", "--quiet", "--python", python, str(build)],
        [uv, "pip", "sync", "--python", build_python, "--require-hashes", str(lock)],
    ]


def build_commands_pip(python: str, build: Path, lock: Path) -> list[list[str]]:
    build_python = str(build / "bin" / "python")
    return [
        [python, "-m", "venv", str(build)],
        [build_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--require-hashes", "-r", str(lock)],
    ]


def package_command(uv: Optional[str], build: Path, repo: Path) -> list[str]:
    """daskhpc itself, non-editable (the repo may be deleted after setup), without dependencies
    (the lock already holds them). uv keys its build cache on pyproject.toml only, so the
    refresh makes it rebuild from the current source."""
    build_python = str(build / "bin" / "python")
    if uv is None:
        return [build_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--no-deps", "--force-reinstall", "--no-cache-dir", str(repo)]
    return [uv, "pip", "install", "--python", build_python, "--no-deps",
            "--reinstall-package", "daskhpc", "--refresh-package", "daskhpc", str(repo)]
