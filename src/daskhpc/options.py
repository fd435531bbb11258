"""What each command is asked to do, as frozen typed objects: the CLI fills them from argv, the
Python API from its arguments, and the commands' logic takes nothing else.

Defaults, one place each:
- start: `daskhpc.start.*` in Dask's config, shipped in daskhpc.yaml (sites override it in
  /etc/dask/*.yaml); read by `StartOptions.from_config` on the cluster side (daskhpc.config).
- setup, remove, stop, status: the field defaults below. setup and remove run in the bootstrap
  Python before any environment exists (no dask, no YAML), and stop/status have nothing to tune.

Standard library only: the CLI imports this in the bootstrap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

from daskhpc.errors import DaskhpcError


# -- value checks shared by the CLI and the config ----------------------------------------------
def _number(convert: Callable[[str], float], minimum: float, inclusive: bool,
            noun: str, bound: str) -> Callable[[object], Any]:
    """A check: text or number -> a number of the given kind at or above its bound, else
    ValueError with the reason."""

    def check(value: object) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not {noun}")
        try:
            number = convert(str(value))
        except ValueError:
            raise ValueError(f"{value!r} is not {noun}") from None
        # Written so that nan fails too: every comparison with nan is false.
        if not (number >= minimum if inclusive else number > minimum) or number == float("inf"):
            raise ValueError(f"{value!r} must be {bound}")
        return number

    return check


positive_int = _number(int, 1, True, "a whole number", "1 or more")
non_negative_int = _number(int, 0, True, "a whole number", "0 or more")
positive_float = _number(float, 0, False, "a number", "more than 0")
non_negative_float = _number(float, 0, True, "a number", "0 or more")


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _text(value: object) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool) or value == "":
        raise ValueError(f"{value!r} is not a text value")
    return str(value)


# -- start-dask-cluster -------------------------------------------------------------------------
@dataclass(frozen=True)
class StartOptions:
    """A cluster to start. Build it with `from_config`, which fills what is not given from
    Dask's config (`daskhpc.start.*`); None means "worked out at start" (see --help)."""

    launcher: str  # "auto" or a name in daskhpc.cluster.launchers.LAUNCHERS
    workers_per_node: Optional[int]
    threads_per_worker: Optional[int]
    memory_limit: Optional[str]  # per worker, Dask's units: "4GiB"
    interface: Optional[str]
    scheduler_file: Optional[str]
    local_directory: Optional[str]
    min_workers: Optional[int]
    timeout: float  # seconds to wait for the workers
    nanny: bool
    tls: bool
    jobs: int  # extra batch jobs of workers (dask-jobqueue)
    death_timeout: float  # seconds a worker waits for an absent scheduler
    lifetime_margin: float  # workers retire this long before the job's end
    hostfile: Optional[str] = None  # the nodes: a file, a host list, or the batch job's
    hosts: Optional[str] = None

    @classmethod
    def from_config(cls, **given: Any) -> StartOptions:
        """Options given (None = not given) over Dask's config; every value checked."""
        from daskhpc import config

        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(given) - names)
        if unknown:
            raise TypeError(f"unknown start option {unknown[0]!r}; known: {', '.join(names)}")
        values = {}
        for name, value in config.section("start").items():
            values[name] = _checked(name, value, f"dask config daskhpc.start.{_key(name)}")
        for name, value in given.items():
            if value is not None:
                values[name] = _checked(name, value, _key(name))
        return cls(**values)


_START_CHECKS: dict[str, Callable[[object], Any]] = {
    "launcher": _text,
    "workers_per_node": positive_int,
    "threads_per_worker": positive_int,
    "memory_limit": _text,
    "interface": _text,
    "scheduler_file": _text,
    "local_directory": _text,
    "hostfile": _text,
    "hosts": _text,
    "min_workers": non_negative_int,
    "timeout": positive_float,
    "nanny": _flag,
    "tls": _flag,
    "jobs": non_negative_int,
    "death_timeout": positive_float,
    "lifetime_margin": non_negative_float,
}


def _key(name: str) -> str:
    return name.replace("_", "-")


def _checked(name: str, value: Any, where: str) -> Any:
    if value is None:
        return None
    try:
        return _START_CHECKS[name](value)
    except ValueError as error:
        raise DaskhpcError(f"{where}: {error}") from None


@dataclass(frozen=True)
class DoctorOptions:
    """dask-cluster-doctor: the start to check, and how to report."""

    start: StartOptions
    json: bool = False

    @classmethod
    def from_config(cls, json: bool = False, **start: Any) -> DoctorOptions:
        return cls(StartOptions.from_config(**start), json)


# -- stop-dask-cluster, dask-cluster-status -----------------------------------------------------
@dataclass(frozen=True)
class StopOptions:
    cluster_id: Optional[str] = None  # None: the latest running cluster
    all: bool = False  # every running cluster of this user


@dataclass(frozen=True)
class StatusOptions:
    cluster_id: Optional[str] = None  # None: the latest running cluster
    all: bool = False
    json: bool = False


# -- setup-dask.sh, remove-dask.sh --------------------------------------------------------------
@dataclass(frozen=True)
class SetupOptions:
    """What setup is asked for; daskhpc.install.options.resolve turns it into paths."""

    backend: str = "auto"  # "auto" or a name in daskhpc.install.backends
    prefix: Optional[str] = None
    name: Optional[str] = None  # conda: a named environment instead of prefix
    python: Optional[str] = None  # venv: the Python to build on (default: setup's own)
    bin_dir: Optional[str] = None
    kernel_name: Optional[str] = None
    display_name: Optional[str] = None
    system: bool = False
    kernel_dir: Optional[str] = None
    modulefiles_dir: Optional[str] = None
    add_to_path: bool = False
    update: bool = False
    yes: bool = False
    dry_run: bool = False
    channel: Sequence[str] = ()  # conda channel URLs (repeatable --channel), in order
    environment: Optional[str] = None  # conda: an environment.yml or conda-lock.yml


@dataclass(frozen=True)
class RemoveOptions:
    keep_env: bool = False
    system: bool = False
    prefix: Optional[str] = None
    yes: bool = False
    dry_run: bool = False
