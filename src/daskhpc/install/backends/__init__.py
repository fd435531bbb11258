"""Environment backends: which tool builds the environment, and the exact commands it runs.

`conda`: a conda environment, through the first of micromamba, mamba, conda found, else through
rattler (no conda executable needed). `auto`: a conda-family tool when one is found (the site
uses conda); else rattler when the conda channels answer within a few seconds; else venv + uv,
saying in one line what was tried and what to pass. A re-run keeps the backend it recorded,
without asking the network again. Each backend module only computes argv lists; running them
is apply's job.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from daskhpc.errors import DaskhpcError
from daskhpc.install import channels as channel_list

CONDA_FAMILY = ("micromamba", "mamba", "conda")


@dataclass(frozen=True)
class Backend:
    name: str  # micromamba | mamba | conda | rattler | venv
    tool: Optional[str] = None  # the conda-family executable, None for rattler and venv
    note: str = ""  # why auto chose it, when that is worth a line

    @property
    def makes_conda_env(self) -> bool:
        return self.name != "venv"


def backend_choices() -> list[str]:
    """What --backend accepts."""
    return ["auto", *CONDA_FAMILY, "rattler", "venv"]


def _find_conda_tool(name: str) -> Optional[str]:
    """The tool's path: its activation variable first (set even when it is not on PATH)."""
    variable = {"micromamba": "MAMBA_EXE", "conda": "CONDA_EXE"}.get(name)
    value = os.environ.get(variable, "") if variable else ""
    if value and os.path.basename(value).startswith(name) and os.access(value, os.X_OK):
        return value
    return shutil.which(name)


def _first_conda_tool() -> Optional[Backend]:
    for name in CONDA_FAMILY:
        tool = _find_conda_tool(name)
        if tool is not None:
            return Backend(name, tool)
    return None


def _auto_without_conda(channels: Sequence[str]) -> Backend:
    """rattler when every channel answers; else venv, with what was tried and what to pass."""
    if not channels:
        return Backend("venv", note="auto: no conda, mamba or micromamba found and no conda "
                       "channel configured: building a venv (for a conda environment pass "
                       "--backend conda --channel URL)")
    failures = [(url, reason) for url in channels
                if (reason := channel_list.probe(url)) is not None]
    if not failures:
        return Backend("rattler", note="auto: no conda, mamba or micromamba found; "
                       f"{', '.join(channels)} answered: a conda environment through rattler")
    url, reason = failures[0]
    return Backend("venv", note=f"auto: no conda, mamba or micromamba found and {url} did not "
                   f"answer within {channel_list.PROBE_SECONDS:.0f} s ({reason}): building a "
                   "venv (for a conda environment pass --backend conda --channel URL of a "
                   "reachable mirror)")


def select(choice: str, channels: Sequence[str] = (), recorded: Optional[str] = None) -> Backend:
    """The backend for --backend CHOICE. recorded: the backend of the existing install, which
    auto keeps (no network probe on a re-run)."""
    if choice in ("venv", "rattler"):
        return Backend(choice)
    if choice in ("micromamba", "mamba"):
        tool = _find_conda_tool(choice)
        if tool is None:
            raise DaskhpcError(
                f"--backend {choice}: {choice} is not on PATH; load it first or use "
                "--backend conda (rattler when no conda tool is found)"
            )
        return Backend(choice, tool)
    found = _first_conda_tool()
    if found is not None:
        return found
    if choice == "conda":
        return Backend("rattler")
    if recorded in ("rattler", "venv"):
        return Backend(recorded)
    return _auto_without_conda(channels)
