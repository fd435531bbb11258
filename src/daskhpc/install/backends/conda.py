"""conda-family backends (micromamba, mamba, conda): the environment comes from conda-forge,
through `conda-lock install` when envs/conda-lock.yml exists (exact, hash-checked), else from
envs/environment.yml. Conda prefixes cannot be moved, so each build gets its own directory and
the env link is switched to it when it is complete (see install/steps/env.py).

`auto` and `--backend conda` take the first of micromamba, mamba, conda found (the site uses
conda); without one, `conda` falls to the backend that stands in for it (rattler)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

from daskhpc.errors import DaskhpcError
from daskhpc.install.backends.base import Backend, Reason

if TYPE_CHECKING:
    from daskhpc.install.options import InstallOptions
    from daskhpc.install.steps.base import Context
    from daskhpc.options import SetupOptions

CONDA_LOCK_FILE = "conda-lock.yml"
FAMILY = ("micromamba", "mamba", "conda")  # auto's order


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


def _find_tool(name: str) -> Optional[str]:
    """The tool's path: its activation variable first (set even when it is not on PATH)."""
    variable = {"micromamba": "MAMBA_EXE", "conda": "CONDA_EXE"}.get(name)
    value = os.environ.get(variable, "") if variable else ""
    if value and os.path.basename(value).startswith(name) and os.access(value, os.X_OK):
        return value
    return shutil.which(name)


@dataclass(frozen=True)
class CondaTool(Backend):
    names = FAMILY

    @classmethod
    def _first_found(cls) -> Optional[Backend]:
        for name in FAMILY:
            tool = _find_tool(name)
            if tool is not None:
                return cls(name, tool)
        return None

    @classmethod
    def choose(cls, choice: str) -> Optional[Backend]:
        if choice == "conda":  # any of the family
            return cls._first_found()
        tool = _find_tool(choice)
        if tool is None:
            raise DaskhpcError(
                f"--backend {choice}: {choice} is not on PATH; load it first or use "
                "--backend conda (rattler when no conda tool is found)"
            )
        return cls(choice, tool)

    @classmethod
    def probe(cls, channels: Sequence[str], passed_over: Sequence[Reason]) -> Union[Backend,
                                                                                    Reason]:
        return cls._first_found() or Reason("no conda, mamba or micromamba found")

    @classmethod
    def keep(cls, recorded: str) -> Optional[Backend]:
        return None  # its tool is looked for again (on PATH: no network)

    def check(self, asked: SetupOptions, python: str) -> None:
        if asked.channel and self.name != "micromamba":
            raise DaskhpcError(f"{self.name} env create takes its channels from the environment "
                               "file and .condarc: put the URL there, or use --backend rattler")

    def named_prefix(self, name: str) -> Path:
        assert self.tool is not None
        try:
            output = subprocess.run(info_command(self.tool), capture_output=True, text=True,
                                    timeout=120).stdout
        except (OSError, subprocess.SubprocessError) as error:
            raise DaskhpcError(f"cannot run {self.tool} ({error}); use --prefix") from None
        return envs_dir_from_info(self.name, output) / name

    def describe(self, options: InstallOptions) -> str:
        return self.name

    def build_commands(self, context: Context, build: Path) -> list[list[str]]:
        options = context.options
        assert self.tool is not None
        return build_commands(self.name, self.tool, build, options.source, find_conda_lock(),
                              options.channels)

    def package_commands(self, context: Context, build: Path) -> list[list[str]]:
        return [package_command(build, context.options.repo)]  # conda compiles at install
