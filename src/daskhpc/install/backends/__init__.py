"""Environment backends: which tool builds the environment, and the exact commands it runs.

Auto-detection order: micromamba, mamba, conda (a conda-family tool means the site uses conda),
then venv + uv. Each backend module only computes argv lists; running them is apply's job.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Optional

from daskhpc.errors import DaskhpcError

CONDA_FAMILY = ("micromamba", "mamba", "conda")


@dataclass(frozen=True)
class Backend:
    name: str  # micromamba | mamba | conda | venv
    tool: Optional[str] = None  # the conda-family executable, None for venv


def backend_choices() -> list[str]:
    """What --backend accepts."""
    return ["auto", *CONDA_FAMILY, "venv"]


def _find_conda_tool(name: str) -> Optional[str]:
    """The tool's path: its activation variable first (set even when it is not on PATH)."""
    variable = {"micromamba": "MAMBA_EXE", "conda": "CONDA_EXE"}.get(name)
    value = os.environ.get(variable, "") if variable else ""
    if value and os.path.basename(value).startswith(name) and os.access(value, os.X_OK):
        return value
    return shutil.which(name)


def select(choice: str) -> Backend:
    """The backend for --backend CHOICE ('auto' picks the first tool found)."""
    if choice == "venv":
        return Backend("venv")
    if choice in CONDA_FAMILY:
        tool = _find_conda_tool(choice)
        if tool is None:
            raise DaskhpcError(
                f"--backend {choice}: {choice} is not on PATH; load it first or use --backend venv"
            )
        return Backend(choice, tool)
    for name in CONDA_FAMILY:
        tool = _find_conda_tool(name)
        if tool is not None:
            return Backend(name, tool)
    return Backend("venv")
