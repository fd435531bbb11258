"""Every location daskhpc reads or writes, each overridable from the environment.

Standard library only: the installer's bootstrap imports this before any environment exists.
"""

from __future__ import annotations

import os
from pathlib import Path


def _env_path(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else None


def home() -> Path:
    return Path(os.path.expanduser("~"))


def data_dir() -> Path:
    """Per-user data: the default environment, the install manifest, the uv tool."""
    xdg = _env_path("XDG_DATA_HOME")
    return _env_path("DASKHPC_DATA_DIR") or (xdg or home() / ".local" / "share") / "daskhpc"


def state_dir() -> Path:
    """Per-user state: install logs, running clusters, their certificates and logs."""
    xdg = _env_path("XDG_STATE_HOME")
    return _env_path("DASKHPC_STATE_DIR") or (xdg or home() / ".local" / "state") / "daskhpc"


def default_env_prefix() -> Path:
    """Where the venv backend builds the environment unless --prefix says otherwise."""
    return _env_path("DASKHPC_ENV_PREFIX") or data_dir() / "env"


def default_bin_dir() -> Path:
    """Where the wrappers go; ~/bin is what the site script used and what users expect."""
    return _env_path("DASKHPC_BIN_DIR") or home() / "bin"


def manifest_file() -> Path:
    return data_dir() / "manifest.json"


def install_log_dir() -> Path:
    return state_dir() / "logs"


def tools_dir() -> Path:
    """Where uv is installed when the machine has none."""
    return data_dir() / "tools"


def shell_rc_file() -> Path:
    return home() / ".bashrc"


def clusters_dir() -> Path:
    """One sub-directory per cluster: spec, process records, logs, certificates."""
    return state_dir() / "clusters"


def default_scheduler_file() -> Path:
    """The path existing notebooks use: Client(scheduler_file='~/dask-scheduler.json')."""
    return _env_path("DASKHPC_SCHEDULER_FILE") or home() / "dask-scheduler.json"


def current_tls_link() -> Path:
    """Symlink to the TLS directory of the user's latest cluster; new kernels' clients use it."""
    return state_dir() / "current-tls"


def placeholder_tls_dir() -> Path:
    """Valid TLS files no cluster trusts: where current-tls points while no cluster runs."""
    return state_dir() / "no-cluster-tls"


def cache_dir() -> Path:
    """Download cache for the installer (uv's), removed with the install unless UV_CACHE_DIR
    points elsewhere."""
    xdg = _env_path("XDG_CACHE_HOME")
    return _env_path("DASKHPC_CACHE_DIR") or (xdg or home() / ".cache") / "daskhpc"


def user_jupyter_data_dir() -> Path:
    """Jupyter's per-user data dir (kernels/ inside), computed as jupyter_core does on Linux."""
    xdg = _env_path("XDG_DATA_HOME")
    return _env_path("JUPYTER_DATA_DIR") or (xdg or home() / ".local" / "share") / "jupyter"


def system_jupyter_data_dir() -> Path:
    """A data dir every Jupyter searches by default, for kernels of --system installs."""
    return Path("/usr/local/share/jupyter")


def default_system_prefix(version: str) -> Path:
    return Path("/opt/daskhpc") / version


def system_manifest_file(prefix: Path) -> Path:
    """A --system install keeps its manifest under its own prefix, not in the admin's home."""
    return prefix / "daskhpc-manifest.json"
