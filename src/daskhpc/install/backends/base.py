"""What every environment backend provides. A backend is one file in this folder with one
`Backend` subclass, listed once in `BACKENDS` (`__init__.py`); nothing outside its file tests
its name. Backends only compute: the steps (install/steps/) run what they return."""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Optional, Union

from daskhpc.errors import DaskhpcError
from daskhpc.install.steps.base import Context, Step

if TYPE_CHECKING:
    from daskhpc.install.options import InstallOptions
    from daskhpc.options import SetupOptions

PYPI_LOCK = "requirements.lock"  # envs/: the hashed PyPI lock every backend installs from


@dataclass(frozen=True)
class Reason:
    """Why `auto` passed a backend over: a clause of its note, and what to pass instead."""

    why: str
    hint: str = ""


@dataclass(frozen=True)
class Tools:
    """What a backend builds with, found before planning; None: missing, and a tool step of the
    backend installs it (and sets it) before the environment is built."""

    uv: Optional[str] = None
    runner: Optional[str] = None  # a Python that runs the backend's builder (py-rattler's)


@dataclass(frozen=True)
class Backend(ABC):
    name: str  # the name it was chosen by, recorded in the manifest
    tool: Optional[str] = None  # the executable it drives, when it is one found on PATH
    note: str = ""  # why auto chose it, when that is worth a line

    names: ClassVar[tuple[str, ...]]  # the --backend values that select it, in auto's order
    stands_in_for: ClassVar[tuple[str, ...]] = ()  # other values it answers when theirs cannot
    makes_conda_env: ClassVar[bool] = True  # a conda prefix (environment file, channels)
    probe_asks_network: ClassVar[bool] = False  # a re-run keeps its record instead of asking

    # -- choosing (--backend, auto, a re-run) ----------------------------------------------

    @classmethod
    def choose(cls, choice: str) -> Optional[Backend]:
        """The backend for an explicit --backend CHOICE (one of names or stands_in_for); None
        to let the next backend that answers it try."""
        return cls(choice if choice in cls.names else cls.names[0])

    @classmethod
    @abstractmethod
    def probe(cls, channels: Sequence[str], passed_over: Sequence[Reason]) -> Union[Backend,
                                                                                    Reason]:
        """auto: this backend when it can build here, else why not (the note's next clause).
        passed_over: why the backends before it were not chosen."""

    @classmethod
    def keep(cls, recorded: str) -> Optional[Backend]:
        """auto on a re-run: the backend the install recorded, kept without probing again (no
        network); None when it must be found again."""
        return cls(recorded)

    @classmethod
    def check_request(cls, asked: SetupOptions) -> None:
        """Refuse options that make no sense with this backend, before anything is looked up."""
        return None  # the default accepts every combination

    def check(self, asked: SetupOptions, python: str) -> None:
        """Refuse, once chosen, what this backend cannot do (python: --python, resolved)."""
        return None

    def named_prefix(self, name: str) -> Path:
        """Where --name NAME puts the environment."""
        raise DaskhpcError("--name needs conda, mamba or micromamba and none was found; "
                           "use --prefix")

    # -- before building -------------------------------------------------------------------

    def find_tools(self, tools_dir: Path) -> Tools:
        return Tools()

    def tool_steps(self, options: InstallOptions, tools: Tools) -> list[Step]:
        """Steps that install the tools it lacks (they run before the environment is built)."""
        return []

    def rebuild_inputs(self, options: InstallOptions) -> list[bytes]:
        """What the environment is built from: a change in any of them means a rebuild."""
        parts = [self.name.encode(), options.python.encode(),
                 (options.repo / "envs" / PYPI_LOCK).read_bytes()]
        if self.makes_conda_env:  # the PyPI lock may add to a conda env
            parts += [options.source.read_bytes(), "\n".join(options.channels).encode()]
        return parts

    # -- building --------------------------------------------------------------------------

    @abstractmethod
    def describe(self, options: InstallOptions) -> str:
        """How the environment is built, for the plan line."""

    @abstractmethod
    def build_commands(self, context: Context, build: Path) -> list[list[str]]:
        """The commands that create a complete environment at build, the lock installed."""

    @abstractmethod
    def package_commands(self, context: Context, build: Path) -> list[list[str]]:
        """The commands that install daskhpc itself into build (and compile what needs it)."""

    def python(self, prefix: Path) -> Path:
        """The environment's Python."""
        return prefix / "bin" / "python"

    def settings(self, options: InstallOptions) -> dict[str, Any]:
        """What the manifest records of how the environment is made (a plain re-run keeps it)."""
        made_with: dict[str, Any] = {"backend": self.name}
        if self.makes_conda_env:
            made_with["channels"] = list(options.given_channels)
            if options.given_environment:
                made_with["environment"] = str(options.source)
        return made_with


def site_packages(prefix: Path) -> Path:
    found = sorted(prefix.glob("lib/python3*/site-packages"))
    if not found:
        raise DaskhpcError(f"no site-packages under {prefix}; rebuild with setup-dask.sh --update")
    return found[-1]


def tool_venv_commands(python: str, folder: Path, requirements: Sequence[str]) -> list[list[str]]:
    """A small venv of our own holding tools from PyPI (works whether or not the bootstrap
    Python has pip: venv brings its own through ensurepip)."""
    return [
        [python, "-m", "venv", str(folder)],
        [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", *requirements],
    ]


@dataclass(frozen=True)
class InstallToolVenv(Step):
    """A backend's tools in <tools dir>/<folder>. Records that venv (tree) and the tools
    folder (dir); the subclass says what it sets in context.tools."""

    needs_venv: ClassVar[bool] = True
    folder: ClassVar[str]
    requirements: ClassVar[tuple[str, ...]]

    def install(self, context: Context) -> Path:
        """Make the venv; its bin folder."""
        tools = context.options.tools_dir
        context.ensure_dir(tools)
        context.manifest.record("tree", tools / self.folder)
        for argv in tool_venv_commands(sys.executable, tools / self.folder, self.requirements):
            context.run(argv, f"installing {self.requirements[0].split('=')[0]} from PyPI")
        return tools / self.folder / "bin"
