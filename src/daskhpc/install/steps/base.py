"""What every install step provides. A step kind is one `Step` subclass: the plan
(install/plan.py) makes them and runs nothing; the installer (install/apply.py) applies the
pending ones in order. A backend's own tool steps live in its backend file."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Optional, Protocol

from daskhpc.errors import DaskhpcError

if TYPE_CHECKING:
    from daskhpc.install.backends.base import Tools
    from daskhpc.install.options import InstallOptions
    from daskhpc.manifest import Manifest


class Context(Protocol):
    """What a step works with: the installer (install/apply.py)."""

    options: InstallOptions
    manifest: Manifest
    tools: Tools  # tool steps set what they installed
    current_build: Optional[Path]  # the complete build the env link points at

    def ensure_dir(self, path: Path) -> None:
        """mkdir -p, recording each directory it creates in the manifest."""

    def run(self, argv: list[str], what: str, **extra_env: str) -> str:
        """Run one command, logged; a failure raises one line saying what failed."""


@dataclass(frozen=True)
class Step(ABC):
    """One thing an install does. Undo is what it records: remove-dask.sh takes away the
    manifest's items (manifest.py), since it must work from the manifest alone."""

    summary: str  # the plan's line
    path: str = ""
    content: str = ""
    mode: int = 0o644

    kind: ClassVar[str]  # its name in tests and the docs
    needs_venv: ClassVar[bool] = False  # it fetches a tool from PyPI through a venv

    @abstractmethod
    def apply(self, context: Context) -> None:
        """Do it, recording in the manifest what it creates before creating it."""

    def is_current(self, context: Context) -> bool:
        """True when applying it would change nothing (dry-run shows it, apply skips it)."""
        return False

    def inside_env(self, env_link: Path) -> bool:
        """It writes into the environment, so a new build needs it again."""
        return False

    def preflight(self, owned: Manifest, env_link: Path) -> list[Path]:
        """The paths it will write, to check they can be; refuses, before anything changes, to
        replace what daskhpc did not make."""
        return []


def claim(path: Path, owned: Manifest, env_link: Path) -> Path:
    """path, unless something not made by daskhpc is there already (inside the env is ours)."""
    if (path.exists() or path.is_symlink()) and not path.is_relative_to(env_link) \
            and not owned.owns(path):
        raise DaskhpcError(f"{path} already exists and was not installed by daskhpc; "
                           "move it away (or pick another --bin-dir/--kernel-name)")
    return path
