"""venv backend: a virtual environment made and filled by uv from envs/requirements.lock
(hash-checked, bytecode compiled). uv comes from PATH, else from the toolkit's own tools dir
(pip-installed there from PyPI); plain venv + pip is the last resort."""

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


def install_uv_command(python: str, tools_dir: Path) -> list[str]:
    """pip puts uv (a self-contained binary in a wheel) into the tools dir, no venv needed."""
    return [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--target", str(tools_dir / "uv"), "uv"]


def build_commands_uv(uv: str, python: str, build: Path, lock: Path) -> list[list[str]]:
    build_python = str(build / "bin" / "python")
    return [
        [uv, "venv", "--quiet", "--python", python, str(build)],
        [uv, "pip", "install", "--python", build_python, "--require-hashes", "--compile-bytecode",
         "-r", str(lock)],
    ]


def build_commands_pip(python: str, build: Path, lock: Path) -> list[list[str]]:
    build_python = str(build / "bin" / "python")
    return [
        [python, "-m", "venv", str(build)],
        [build_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--require-hashes", "-r", str(lock)],
        [build_python, "-m", "compileall", "-q", "-j", "0", str(build / "lib")],
    ]


def package_command(uv: Optional[str], build: Path, repo: Path) -> list[str]:
    """daskhpc itself, non-editable (the repo may be deleted after setup), without dependencies
    (the lock already holds them)."""
    build_python = str(build / "bin" / "python")
    if uv is None:
        return [build_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--no-deps", "--force-reinstall", "--no-cache-dir", str(repo)]
    return [uv, "pip", "install", "--python", build_python, "--no-deps", "--compile-bytecode",
            "--reinstall-package", "daskhpc", "--no-cache", str(repo)]
