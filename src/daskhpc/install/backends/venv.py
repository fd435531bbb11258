"""venv backend: a virtual environment made and filled by uv from envs/requirements.lock
(hash-checked, bytecode compiled). uv comes from PATH, else from the toolkit's own tools dir
(a venv with uv from PyPI); plain venv + pip is the last resort. `auto` builds one when no
backend before it can (it needs nothing but a Python >= 3.11)."""

from __future__ import annotations

import shutil
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Optional, Union

from daskhpc.errors import DaskhpcError
from daskhpc.install.backends.base import PYPI_LOCK, Backend, InstallToolVenv, Reason, Tools
from daskhpc.install.steps.base import Context, Step

if TYPE_CHECKING:
    from daskhpc.install.options import InstallOptions
    from daskhpc.options import SetupOptions

MIN_ENV_PYTHON = (3, 11)  # what the locked stack needs (numpy 2.4, pandas 3); see envs/lock.sh


TOOLS_VENV = "uv"


def uv_in_tools_dir(tools_dir: Path) -> Path:
    return tools_dir / TOOLS_VENV / "bin" / "uv"


def find_uv(tools_dir: Path) -> Optional[str]:
    on_path = shutil.which("uv")
    if on_path:
        return on_path
    own = uv_in_tools_dir(tools_dir)
    return str(own) if own.exists() else None


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


def python_facts(python: str) -> tuple[tuple[int, int], list[Path]]:
    """The Python's version and the files a venv made from it keeps using (its real binary and
    its standard library)."""
    script = ("import os, sys; print('%d %d' % sys.version_info[:2]); "
              "print(os.path.realpath(sys.executable)); print(sys.base_prefix)")
    try:
        lines = subprocess.run([python, "-c", script], capture_output=True, text=True,
                               timeout=60, check=True).stdout.splitlines()
        major, minor = lines[0].split()
        return (int(major), int(minor)), [Path(lines[1]), Path(lines[2])]
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        raise DaskhpcError(f"{python} does not run as a Python; pass --python PATH") from None


def _usable_by_everyone(path: Path) -> bool:
    """Others can reach path (x on every folder above it) and read it."""
    try:
        if not all(folder.stat().st_mode & stat.S_IXOTH for folder in path.parents):
            return False
        return bool(path.stat().st_mode & stat.S_IROTH)
    except OSError:
        return False


@dataclass(frozen=True)
class InstallUv(InstallToolVenv):
    kind: ClassVar[str] = "uv"
    folder: ClassVar[str] = TOOLS_VENV
    requirements: ClassVar[tuple[str, ...]] = ("uv",)

    def apply(self, context: Context) -> None:
        try:
            bin_dir = self.install(context)
        except DaskhpcError as error:  # pip can still build the env, only slower
            print(f"warning: {error}\n      continuing with pip (slower)", flush=True)
            return
        context.tools = replace(context.tools, uv=str(bin_dir / "uv"))


@dataclass(frozen=True)
class Venv(Backend):
    names = ("venv",)
    makes_conda_env = False

    @classmethod
    def probe(cls, channels: Sequence[str], passed_over: Sequence[Reason]) -> Union[Backend,
                                                                                    Reason]:
        why = " and ".join(reason.why for reason in passed_over)
        hints = "; ".join(reason.hint for reason in passed_over if reason.hint)
        note = f"auto: {why}: building a venv" + (f" ({hints})" if hints else "")
        return cls("venv", note=note if passed_over else "")

    @classmethod
    def check_request(cls, asked: SetupOptions) -> None:
        if asked.name:
            raise DaskhpcError("--name names a conda environment; with --backend venv use "
                               "--prefix")
        if asked.channel or asked.environment:
            raise DaskhpcError("--channel and --environment are for conda environments; with "
                               "--backend venv leave them out (the venv installs envs/"
                               "requirements.lock)")

    def check(self, asked: SetupOptions, python: str) -> None:
        version, used_files = python_facts(python)
        if version < MIN_ENV_PYTHON:
            needed = ".".join(map(str, MIN_ENV_PYTHON))
            raise DaskhpcError(
                f"{python} is Python {version[0]}.{version[1]}; the Dask stack needs >= {needed}: "
                f"pass --python /path/to/python{needed} (or newer)"
            )
        hidden = [path for path in used_files if not _usable_by_everyone(path)]
        if asked.system and hidden:
            raise DaskhpcError(
                f"{python} lives in {hidden[0]}, which other users cannot read, so their wrappers "
                "could not run it; pass --python with a Python every user can run "
                "(e.g. /usr/bin/python3)"
            )

    def find_tools(self, tools_dir: Path) -> Tools:
        return Tools(uv=find_uv(tools_dir))

    def tool_steps(self, options: InstallOptions, tools: Tools) -> list[Step]:
        if tools.uv is not None:
            return []
        return [InstallUv(f"install uv into {options.tools_dir} (none on PATH)")]

    def describe(self, options: InstallOptions) -> str:
        return "venv + uv"

    def build_commands(self, context: Context, build: Path) -> list[list[str]]:
        options, uv = context.options, context.tools.uv
        lock = options.repo / "envs" / PYPI_LOCK
        if uv is None:
            return build_commands_pip(options.python, build, lock)
        return build_commands_uv(uv, options.python, build, lock)

    def package_commands(self, context: Context, build: Path) -> list[list[str]]:
        return [package_command(context.tools.uv, build, context.options.repo),
                compile_command(build)]
