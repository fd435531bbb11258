"""Turn SetupOptions (what setup was asked for) into resolved install options (every path
absolute), refusing bad combinations before anything is changed."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from daskhpc import __version__, manifest, paths
from daskhpc.errors import DaskhpcError
from daskhpc.install import channels
from daskhpc.install.backends import Backend, conda, named, select
from daskhpc.options import SetupOptions


@dataclass(frozen=True)
class InstallOptions:
    repo: Path
    system: bool
    backend: Backend
    python: str  # the Python a venv is made from
    env_link: Path  # the path users, wrappers and the kernel see
    builds_dir: Path  # complete and in-progress builds behind env_link
    bin_dir: Path
    kernel_name: str
    display_name: str
    kernel_dir: Path  # <jupyter data dir>/kernels/<kernel_name>
    manifest_path: Path
    log_dir: Path
    tools_dir: Path
    cache_dir: Path
    cache_is_ours: bool  # False when the user pointed UV_CACHE_DIR somewhere
    rc_file: Optional[Path]  # set with --add-to-path
    modulefiles_dir: Optional[Path]
    module_version: str
    update: bool
    source: Path  # conda backends: the environment.yml or conda-lock.yml to install
    channels: tuple[str, ...]  # conda channel URLs, in order
    given_channels: tuple[str, ...]  # --channel (or the install's recorded ones)
    given_environment: bool  # source came from --environment (or the install's record)

    @property
    def env_python(self) -> Path:
        return self.backend.python(self.env_link)


def repo_dir() -> Path:
    """The checkout setup runs from (the bootstrap puts its src/ on PYTHONPATH)."""
    repo = Path(__file__).resolve().parents[3]
    if not (repo / "envs" / "environment.yml").exists():
        raise DaskhpcError(
            "setup must run from a daskhpc checkout (envs/environment.yml not found next to "
            f"{repo / 'src'}); run sh setup-dask.sh from the repository"
        )
    return repo


def _absolute(text: str) -> Path:
    return Path(os.path.abspath(os.path.expanduser(text)))


def _check_combinations(asked: SetupOptions) -> None:
    if not asked.system:
        for flag, value in (("--kernel-dir", asked.kernel_dir),
                            ("--modulefiles-dir", asked.modulefiles_dir)):
            if value:
                raise DaskhpcError(f"{flag} is for admin installs; add --system or leave it out")
    elif asked.add_to_path:
        raise DaskhpcError("--add-to-path edits your own ~/.bashrc; for --system installs "
                           "give users the modulefile (--modulefiles-dir) instead")
    if asked.name and asked.prefix:
        raise DaskhpcError("give either --name or --prefix for the environment, not both")
    kind = named(asked.backend)
    if kind is not None:
        kind.check_request(asked)
    if asked.name and asked.system:
        raise DaskhpcError("--system installs live under --prefix; leave out --name")
    for flag, value in (("--kernel-name", asked.kernel_name), ("--name", asked.name)):
        if value is not None and (not value or "/" in value or value.startswith(".")):
            raise DaskhpcError(f"{flag} {value!r} must be a plain name (no '/', no leading '.')")


def conda_source(repo: Path, given: Optional[str]) -> Path:
    """The file a conda environment is made from: --environment, else the project's lock when
    it exists, else its environment.yml."""
    if given:
        path = _absolute(given)
        if not path.is_file():
            raise DaskhpcError(f"--environment {given}: no such file; give an environment.yml "
                               "or conda-lock.yml")
        return path
    lock = repo / "envs" / conda.CONDA_LOCK_FILE
    return lock if lock.exists() else repo / "envs" / "environment.yml"


def _recorded_settings(asked: SetupOptions) -> dict[str, Any]:
    """What the install already there was made with: a plain re-run (after a `git pull`) keeps
    its backend (auto does not probe again), its channels and its environment file."""
    if asked.system:
        prefix = _absolute(asked.prefix) if asked.prefix else paths.default_system_prefix(
            __version__)
        path = paths.system_manifest_file(prefix)
    else:
        path = paths.manifest_file()
    try:
        record = manifest.load(path)
    except DaskhpcError:
        return {}
    return dict(record.settings) if record else {}


def resolve(asked: SetupOptions) -> InstallOptions:
    _check_combinations(asked)
    repo = repo_dir()
    recorded = _recorded_settings(asked)
    environment = asked.environment or recorded.get("environment")
    source = conda_source(repo, environment)
    given_channels = list(asked.channel or recorded.get("channels") or [])
    channel_urls, _ = channels.resolve(given_channels, source)
    backend = select(asked.backend, channel_urls,
                     recorded.get("backend") if asked.backend == "auto" else None)
    python = _absolute(asked.python) if asked.python else Path(sys.executable)
    backend.check(asked, str(python))

    cache_variable = os.environ.get("UV_CACHE_DIR")
    if asked.system:
        prefix = _absolute(asked.prefix) if asked.prefix else paths.default_system_prefix(
            __version__)
        env_link = prefix / "env"
        bin_dir = _absolute(asked.bin_dir) if asked.bin_dir else prefix / "bin"
        data = _absolute(asked.kernel_dir) if asked.kernel_dir else paths.system_jupyter_data_dir()
        manifest_path = paths.system_manifest_file(prefix)
        log_dir, tools_dir = prefix / "logs", prefix / "tools"
        modulefiles_dir = _absolute(asked.modulefiles_dir) if asked.modulefiles_dir else None
        module_version = prefix.name
        # Versions side by side each get their own kernel in the shared Jupyter path.
        kernel_name = asked.kernel_name or f"dask-{module_version}"
        display_name = asked.display_name or f"Python (Dask {module_version})"
    else:
        if asked.name:
            env_link = backend.named_prefix(asked.name)
        else:
            env_link = _absolute(asked.prefix) if asked.prefix else paths.default_env_prefix()
        bin_dir = _absolute(asked.bin_dir) if asked.bin_dir else paths.default_bin_dir()
        data = paths.user_jupyter_data_dir()
        manifest_path = paths.manifest_file()
        log_dir, tools_dir = paths.install_log_dir(), paths.tools_dir()
        modulefiles_dir, module_version = None, __version__
        kernel_name = asked.kernel_name or "dask"
        display_name = asked.display_name or "Python (Dask)"
    return InstallOptions(
        repo=repo,
        system=asked.system,
        backend=backend,
        python=str(python),
        env_link=env_link,
        builds_dir=env_link.with_name(env_link.name + ".builds"),
        bin_dir=bin_dir,
        kernel_name=kernel_name,
        display_name=display_name,
        kernel_dir=data / "kernels" / kernel_name,
        manifest_path=manifest_path,
        log_dir=log_dir,
        tools_dir=tools_dir,
        cache_dir=_absolute(cache_variable) if cache_variable else paths.cache_dir(),
        cache_is_ours=not cache_variable,
        rc_file=paths.shell_rc_file() if asked.add_to_path else None,
        modulefiles_dir=modulefiles_dir,
        module_version=module_version,
        update=bool(asked.update),
        source=source,
        channels=tuple(channel_urls),
        given_channels=tuple(given_channels),
        given_environment=bool(environment),
    )
