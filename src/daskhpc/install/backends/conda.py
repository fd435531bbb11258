"""conda-family backends (micromamba, mamba, conda): the environment comes from conda-forge,
through `conda-lock install` when envs/conda-lock.yml exists (exact, hash-checked), else from
envs/environment.yml. Conda prefixes cannot be moved, so each build gets its own directory and
the env link is switched to it when it is complete (see install/apply.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from daskhpc.errors import DaskhpcError

CONDA_LOCK_FILE = "conda-lock.yml"


def conda_lock_flag(backend: str) -> str:
    return {"micromamba": "--micromamba", "mamba": "--mamba", "conda": "--conda"}[backend]


def build_commands(backend: str, tool: str, build: Path, source: Path,
                   conda_lock: Optional[str], channels: Sequence[str] = ()) -> list[list[str]]:
    """The commands that create a complete environment at build from source (an
    environment.yml, or a conda-lock.yml installed exactly); the caller installs daskhpc.
    channels (--channel) replace the file's and .condarc's: micromamba only."""
    if source.name.endswith(CONDA_LOCK_FILE):
        if conda_lock is None:
            raise DaskhpcError(
                f"{source} exists but conda-lock is not on PATH; install it (pip install "
                "conda-lock), delete the lock file to solve afresh, or use --backend rattler"
            )
        return [[conda_lock, "install", conda_lock_flag(backend), tool,
                 "--prefix", str(build), str(source)]]
    if backend == "micromamba":
        override = [arg for url in channels for arg in ("-c", url)]
        return [[tool, "create", "--yes", "--prefix", str(build), "--file", str(source),
                 *override, *(["--override-channels"] if override else [])]]
    return [[tool, "env", "create", "--quiet", "--prefix", str(build), "--file", str(source)]]


def package_command(build: Path, repo: Path) -> list[str]:
    """daskhpc itself with the env's pip (environment.yml includes pip), non-editable, no deps."""
    return [str(build / "bin" / "python"), "-m", "pip", "install", "--quiet",
            "--disable-pip-version-check", "--no-deps", "--force-reinstall", "--no-cache-dir",
            str(repo)]


def info_command(tool: str) -> list[str]:
    return [tool, "info", "--json"]


def envs_dir_from_info(backend: str, info_json: str) -> Path:
    """Where named environments go, from `<tool> info --json` (micromamba spells it its way)."""
    try:
        info = json.loads(info_json)
    except ValueError:
        raise DaskhpcError(f"`{backend} info --json` printed no JSON; use --prefix") from None
    key = "envs directories" if backend == "micromamba" else "envs_dirs"
    directories = info.get(key) or []
    if not directories:
        raise DaskhpcError(f"{backend} names no envs directory; use --prefix instead of --name")
    return Path(directories[0])


def find_conda_lock() -> Optional[str]:
    return shutil.which("conda-lock")
