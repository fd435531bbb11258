"""Every location daskhpc reads or writes, each overridable from the environment.

Each is a function, computed on every call: HOME and the variables may change (tests do).
Standard library only: the installer's bootstrap imports this before any environment exists.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Optional


def _env_path(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else None


def home() -> Path:
    return Path(os.path.expanduser("~"))


def _xdg(override: str, base: str, default: str, name: str) -> Path:
    """$override, else <$base, else ~/default>/name (the XDG base directories' way)."""
    return _env_path(override) or (_env_path(base) or home() / default) / name


def _location(base: Callable[[], Path], name: str,
              override: Optional[str] = None) -> Callable[[], Path]:
    """The location `name` inside base() (or $override when it is set)."""
    def location() -> Path:
        return (_env_path(override) if override else None) or base() / name
    return location


def data_dir() -> Path:
    """Per-user data: the default environment, the install manifest, the tools."""
    return _xdg("DASKHPC_DATA_DIR", "XDG_DATA_HOME", ".local/share", "daskhpc")


def state_dir() -> Path:
    """Per-user state: install logs, running clusters, their certificates and logs."""
    return _xdg("DASKHPC_STATE_DIR", "XDG_STATE_HOME", ".local/state", "daskhpc")


def cache_dir() -> Path:
    """Download cache for the installer (uv's), removed with the install unless UV_CACHE_DIR
    points elsewhere."""
    return _xdg("DASKHPC_CACHE_DIR", "XDG_CACHE_HOME", ".cache", "daskhpc")


def user_jupyter_data_dir() -> Path:
    """Jupyter's per-user data dir (kernels/ inside), computed as jupyter_core does on Linux."""
    return _xdg("JUPYTER_DATA_DIR", "XDG_DATA_HOME", ".local/share", "jupyter")


# Where the environment is built unless --prefix says otherwise.
default_env_prefix = _location(data_dir, "env", "DASKHPC_ENV_PREFIX")
manifest_file = _location(data_dir, "manifest.json")
# uv or py-rattler, installed here when the machine has none.
tools_dir = _location(data_dir, "tools")

install_log_dir = _location(state_dir, "logs")
# One sub-directory per cluster: spec, process records, logs, certificates.
clusters_dir = _location(state_dir, "clusters")
# The user's CA: it signs the certificates of every cluster of theirs and their client's.
user_ca_dir = _location(state_dir, "ca")
# The user's client certificates, one sub-directory per issue (renewal swaps current-tls).
client_tls_dir = _location(state_dir, "client-tls")
# Symlink to the user's client certificates; every client in their environments uses it.
current_tls_link = _location(state_dir, "current-tls")
# Valid TLS files no cluster trusts: where current-tls points before the user's first cluster.
placeholder_tls_dir = _location(state_dir, "no-cluster-tls")

# Where the wrappers go; ~/bin is what the site script used and what users expect.
default_bin_dir = _location(home, "bin", "DASKHPC_BIN_DIR")
shell_rc_file = _location(home, ".bashrc")
# The path existing notebooks use: Client(scheduler_file='~/dask-scheduler.json').
default_scheduler_file = _location(home, "dask-scheduler.json", "DASKHPC_SCHEDULER_FILE")


def system_jupyter_data_dir() -> Path:
    """A data dir every Jupyter searches by default, for kernels of --system installs."""
    return Path("/usr/local/share/jupyter")


def default_system_prefix(version: str) -> Path:
    return Path("/opt/daskhpc") / version


def system_manifest_file(prefix: Path) -> Path:
    """A --system install keeps its manifest under its own prefix, not in the admin's home."""
    return prefix / "daskhpc-manifest.json"
