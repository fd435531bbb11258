"""Which nodes we may use, with their cores and memory: from the batch system or the user.

`detect()` is pure apart from reading the files the environment names and this machine's own
cores and memory, so every format is unit-tested on real-format samples. Precedence: --hostfile
or --hosts, then Slurm, PBS, LSF, SGE, and finally this machine alone.
"""

from __future__ import annotations

import os
import re
import socket
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import hostlist

from daskhpc.errors import DaskhpcError


@dataclass(frozen=True)
class Node:
    host: str
    slots: int  # processes the allocation grants on this node
    cores: int  # cores usable on this node
    memory_bytes: Optional[int]  # None: not given by the allocation (use this machine's)


@dataclass(frozen=True)
class Allocation:
    kind: str  # "slurm", "pbs", "lsf", "sge", "hostfile", "hosts", "none"
    nodes: tuple[Node, ...]
    job_id: Optional[str] = None
    end_time: Optional[float] = None  # epoch seconds when the job is killed


def detect(environ: Mapping[str, str], hostfile: Optional[str] = None,
           hosts: Optional[str] = None) -> Allocation:
    if hostfile is not None:
        return _from_hostfile(Path(hostfile).expanduser())
    if hosts is not None:
        return _from_hosts(hosts)
    if environ.get("SLURM_JOB_NODELIST") or environ.get("SLURM_NODELIST"):
        return _from_slurm(environ)
    if environ.get("PBS_NODEFILE"):
        return _from_slot_lines("pbs", "PBS_NODEFILE", environ["PBS_NODEFILE"],
                                environ.get("PBS_JOBID"))
    if environ.get("LSB_DJOB_HOSTFILE"):
        return _from_slot_lines("lsf", "LSB_DJOB_HOSTFILE", environ["LSB_DJOB_HOSTFILE"],
                                environ.get("LSB_JOBID"))
    if environ.get("LSB_HOSTS"):
        return _from_counted("lsf", "LSB_HOSTS", environ["LSB_HOSTS"].split(),
                             environ.get("LSB_JOBID"))
    if environ.get("PE_HOSTFILE"):
        return _from_sge(environ)
    return Allocation("none", (Node(socket.gethostname(), local_cores(), local_cores(), None),))


# -- Slurm --------------------------------------------------------------------------------------
def _from_slurm(environ: Mapping[str, str]) -> Allocation:
    text = environ.get("SLURM_JOB_NODELIST") or environ["SLURM_NODELIST"]
    names = expand("SLURM_JOB_NODELIST", text)
    cpus = _slurm_cpus_per_node(environ, len(names))
    memory = _slurm_memory(environ, cpus)
    nodes = tuple(Node(name, count, count, mem) for name, count, mem in zip(names, cpus, memory))
    end = environ.get("SLURM_JOB_END_TIME")
    return Allocation("slurm", nodes, environ.get("SLURM_JOB_ID"),
                      float(end) if end and end.isdigit() else None)


def expand(source: str, text: str) -> list[str]:
    """Expand a Slurm-style host list (node[01-03,07],gpu[1-2]) with python-hostlist."""
    try:
        names = hostlist.expand_hostlist(text.strip())
    except hostlist.BadHostlist as error:
        raise DaskhpcError(f"{source}={text!r} is not a valid host list ({error})") from None
    if not names or any(not _valid_host(name) for name in names):
        raise DaskhpcError(f"{source}={text!r} is not a valid host list")
    return list(OrderedDict.fromkeys(names))


_CPUS_ITEM = re.compile(r"^(\d+)(?:\(x(\d+)\))?$")


def _slurm_cpus_per_node(environ: Mapping[str, str], count: int) -> list[int]:
    """SLURM_JOB_CPUS_PER_NODE is run-length encoded: "2(x3),1" = 2,2,2,1."""
    text = environ.get("SLURM_JOB_CPUS_PER_NODE")
    if not text:
        per_node = environ.get("SLURM_CPUS_ON_NODE")
        if per_node:
            return [_whole("SLURM_CPUS_ON_NODE", per_node)] * count
        return [local_cores()] * count
    cpus: list[int] = []
    for item in text.split(","):
        match = _CPUS_ITEM.match(item.strip())
        if not match or int(match.group(1)) < 1:
            raise DaskhpcError(f"SLURM_JOB_CPUS_PER_NODE={text!r} is not in Slurm's format")
        cpus += [int(match.group(1))] * int(match.group(2) or 1)
    if len(cpus) != count:
        raise DaskhpcError(
            f"SLURM_JOB_CPUS_PER_NODE={text!r} gives {len(cpus)} nodes but the node list has "
            f"{count}; check the job's environment"
        )
    return cpus


def _slurm_memory(environ: Mapping[str, str], cpus: list[int]) -> list[Optional[int]]:
    """SLURM_MEM_PER_NODE / SLURM_MEM_PER_CPU are in MiB; 0 means "all of the node"."""
    per_node = environ.get("SLURM_MEM_PER_NODE")
    if per_node:
        mib = _whole("SLURM_MEM_PER_NODE", per_node, minimum=0)
        return [mib * 2**20 if mib else None] * len(cpus)
    per_cpu = environ.get("SLURM_MEM_PER_CPU")
    if per_cpu:
        mib = _whole("SLURM_MEM_PER_CPU", per_cpu, minimum=0)
        return [count * mib * 2**20 if mib else None for count in cpus]
    return [None] * len(cpus)


# -- files with one line per slot (PBS, LSF) and SGE --------------------------------------------
def _from_slot_lines(kind: str, variable: str, path: str, job_id: Optional[str]) -> Allocation:
    lines = _read_lines(variable, Path(path))
    return _from_counted(kind, variable, [line.split()[0] for line in lines], job_id)


def _from_counted(kind: str, source: str, names: list[str], job_id: Optional[str]) -> Allocation:
    """Repeated names are slots on the same node, in first-seen order."""
    slots: OrderedDict[str, int] = OrderedDict()
    for name in names:
        if not _valid_host(name):
            raise DaskhpcError(f"{source}: {name!r} is not a host name")
        slots[name] = slots.get(name, 0) + 1
    if not slots:
        raise DaskhpcError(f"{source} lists no hosts")
    return Allocation(kind, tuple(Node(n, c, c, None) for n, c in slots.items()), job_id)


def _from_sge(environ: Mapping[str, str]) -> Allocation:
    """PE_HOSTFILE lines: `host slots queue processor-range`."""
    nodes = []
    for line in _read_lines("PE_HOSTFILE", Path(environ["PE_HOSTFILE"])):
        fields = line.split()
        if len(fields) < 2 or not _valid_host(fields[0]):
            raise DaskhpcError(f"PE_HOSTFILE: {line!r} is not `host slots queue range`")
        count = _whole(f"PE_HOSTFILE slots of {fields[0]}", fields[1])
        nodes.append(Node(fields[0], count, count, None))
    if not nodes:
        raise DaskhpcError("PE_HOSTFILE lists no hosts")
    return Allocation("sge", tuple(nodes), environ.get("JOB_ID"))


# -- the user's own list ------------------------------------------------------------------------
_HOSTFILE_LINE = re.compile(
    r"^(?P<host>[^\s:]+)(?::(?P<colon>\S+)|\s+slots\s*=\s*(?P<slots>\S+))?$"
)


def _from_hostfile(path: Path) -> Allocation:
    """Lines `host`, `host slots=N` (Open MPI) or `host:N` (MPICH); # starts a comment."""
    nodes: OrderedDict[str, Node] = OrderedDict()
    for number, line in enumerate(_read_lines("--hostfile", path, raw=True), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = _HOSTFILE_LINE.match(text)
        if not match or not _valid_host(match.group("host")):
            raise DaskhpcError(
                f"--hostfile {path} line {number}: {text!r} is not `host`, `host slots=N` "
                "or `host:N`"
            )
        host = match.group("host")
        count_text = match.group("slots") or match.group("colon")
        count = _whole(f"--hostfile {path} line {number} slots", count_text) if count_text else 0
        cores = count or local_cores()
        nodes[host] = Node(host, count or cores, cores, None)
    if not nodes:
        raise DaskhpcError(f"--hostfile {path} lists no hosts")
    return Allocation("hostfile", tuple(nodes.values()))


def _from_hosts(text: str) -> Allocation:
    names = expand("--hosts", text)
    return Allocation("hosts", tuple(Node(n, local_cores(), local_cores(), None) for n in names))


# -- helpers ------------------------------------------------------------------------------------
_HOST_NAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


def _valid_host(name: str) -> bool:
    return bool(_HOST_NAME.match(name)) and len(name) <= 253


def _read_lines(source: str, path: Path, raw: bool = False) -> list[str]:
    try:
        text = path.read_text()
    except OSError as error:
        raise DaskhpcError(f"{source}: cannot read {path} ({error.strerror})") from None
    lines = text.splitlines()
    return lines if raw else [line.strip() for line in lines if line.strip()]


def _whole(source: str, text: str, minimum: int = 1) -> int:
    if not text.strip().isdigit() or int(text) < minimum:
        raise DaskhpcError(f"{source}={text!r} is not a whole number >= {minimum}")
    return int(text)


def local_cores() -> int:
    """Cores this process may use (respects cpusets and Slurm's binding)."""
    return len(os.sched_getaffinity(0))


def local_memory() -> int:
    """This machine's memory, or the cgroup limit on this process when it is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = cgroup_memory_limit()
    return min(total, limit) if limit else total


def cgroup_memory_limit(root: Path = Path("/sys/fs/cgroup")) -> Optional[int]:
    """The tightest memory limit on this process's cgroup and its ancestors (v2, then v1).

    Dask itself reads only the top-level files and so misses Slurm's per-job cgroups.
    """
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        _, controllers, relative = line.split(":", 2)
        if controllers == "":  # v2 unified hierarchy
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        directory = base / relative.lstrip("/")
        while True:
            limit = _read_limit(directory / name)
            if limit:
                limits.append(limit)
            if directory == base or base not in directory.parents:
                break
            directory = directory.parent
    return min(limits) if limits else None


def _read_limit(path: Path) -> Optional[int]:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    # "max" (v2) or a huge page-aligned number (v1) mean no limit
    return int(text) if text.isdigit() and int(text) < 2**60 else None
