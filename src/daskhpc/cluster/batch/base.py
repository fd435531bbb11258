"""What every batch system module provides (BatchSystem), what it produces (Allocation of
Nodes), and the parsing helpers they share. Standard library only, apart from python-hostlist
for Slurm-style host lists."""

from __future__ import annotations

import re
import subprocess
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from daskhpc.errors import DaskhpcError

# Runs a batch system's query command: stdout, or None when it is missing or fails. Tests pass
# one that answers with recorded real outputs.
Runner = Callable[[Sequence[str]], Optional[str]]


@dataclass(frozen=True)
class Node:
    host: str
    slots: int  # processes the allocation grants on this node
    cores: int  # cores usable on this node
    memory_bytes: Optional[int]  # None: not given by the allocation (use this machine's)


@dataclass(frozen=True)
class Allocation:
    kind: str  # a BatchSystem's name, or "hostfile", "hosts", "none"
    nodes: tuple[Node, ...]
    job_id: Optional[str] = None
    end_time: Optional[float] = None  # epoch seconds when the job is killed


@dataclass(frozen=True)
class BatchSystem(ABC):
    """One batch system. A module of daskhpc.cluster.batch defines SYSTEM = TheSystem(...)."""

    name: str  # "slurm": Allocation.kind, DASKHPC_JOBQUEUE's value
    precedence: int  # detection order when several systems' variables are set
    job_id_variable: str  # set inside its jobs, e.g. SLURM_JOB_ID
    node_variables: tuple[str, ...]  # any of them set: we are in its allocation
    # --jobs: the dask-jobqueue Job class ("module:Class") and the submit command it runs
    job_class: str
    submit_command: str

    def in_allocation(self, environ: Mapping[str, str]) -> bool:
        """Whether environ is inside one of its jobs, naming the nodes."""
        return any(environ.get(variable) for variable in self.node_variables)

    @abstractmethod
    def allocation(self, environ: Mapping[str, str]) -> Allocation:
        """The job's nodes with their cores and memory (and its id, end if known)."""

    @abstractmethod
    def end_time(self, environ: Mapping[str, str], run: Runner,
                 now: Callable[[], float]) -> Optional[float]:
        """When the job we run in is killed (epoch seconds), asked of the batch system."""

    def launcher(self, environ: Mapping[str, str]) -> Optional[tuple[str, str]]:
        """The launcher it prefers for its allocations, and why; None: ssh."""
        return None

    def takes_jobs_here(self, environ: Mapping[str, str], which: Callable[[str], object]
                        ) -> bool:
        """Whether --jobs would go to this system here (its submit command is on PATH)."""
        return which(self.submit_command) is not None


def run_query(argv: Sequence[str]) -> Optional[str]:
    """stdout of a batch system's query command, or None when it is missing or fails."""
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=15,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def parse_hms(text: str) -> float:
    """Seconds in the [[hours:]minutes:]seconds format (PBS walltime, SGE h_rt)."""
    parts = [float(part) for part in text.strip().split(":")]
    if not 1 <= len(parts) <= 3:
        raise ValueError(f"not a [[hours:]minutes:]seconds time: {text!r}")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


# -- reading what the batch system gives ------------------------------------------------------
_HOST_NAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


def valid_host(name: str) -> bool:
    return bool(_HOST_NAME.match(name)) and len(name) <= 253


def read_lines(source: str, path: Path, raw: bool = False) -> list[str]:
    try:
        text = path.read_text()
    except OSError as error:
        raise DaskhpcError(f"{source}: cannot read {path} ({error.strerror})") from None
    lines = text.splitlines()
    return lines if raw else [line.strip() for line in lines if line.strip()]


def whole(source: str, text: str, minimum: int = 1) -> int:
    if not text.strip().isdigit() or int(text) < minimum:
        raise DaskhpcError(f"{source}={text!r} is not a whole number >= {minimum}")
    return int(text)


def expand(source: str, text: str) -> list[str]:
    """Expand a Slurm-style host list (node[01-03,07],gpu[1-2]) with python-hostlist."""
    import hostlist  # the python-hostlist package

    try:
        names = hostlist.expand_hostlist(text.strip())
    except hostlist.BadHostlist as error:
        raise DaskhpcError(f"{source}={text!r} is not a valid host list ({error})") from None
    if not names or any(not valid_host(name) for name in names):
        raise DaskhpcError(f"{source}={text!r} is not a valid host list")
    return list(OrderedDict.fromkeys(names))


def from_counted(kind: str, source: str, names: list[str], job_id: Optional[str]) -> Allocation:
    """Repeated names are slots on the same node, in first-seen order."""
    slots: OrderedDict[str, int] = OrderedDict()
    for name in names:
        if not valid_host(name):
            raise DaskhpcError(f"{source}: {name!r} is not a host name")
        slots[name] = slots.get(name, 0) + 1
    if not slots:
        raise DaskhpcError(f"{source} lists no hosts")
    return Allocation(kind, tuple(Node(n, c, c, None) for n, c in slots.items()), job_id)


def from_slot_lines(kind: str, variable: str, path: str, job_id: Optional[str]) -> Allocation:
    """A file with one line per slot (PBS, LSF)."""
    lines = read_lines(variable, Path(path))
    return from_counted(kind, variable, [line.split()[0] for line in lines], job_id)
