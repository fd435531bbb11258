"""No batch system: the user's own host list (--hostfile, --hosts) or this machine alone, with
this machine's cores and memory (its cpuset and cgroup limits)."""

from __future__ import annotations

import os
import re
import socket
from collections import OrderedDict
from pathlib import Path
from typing import Optional

from daskhpc.cluster.batch.base import Allocation, Node, expand, read_lines, valid_host, whole
from daskhpc.errors import DaskhpcError

_HOSTFILE_LINE = re.compile(
    r"^(?P<host>[^\s:]+)(?::(?P<colon>\S+)|\s+slots\s*=\s*(?P<slots>\S+))?$"
)


def from_hostfile(name: str) -> Allocation:
    """Lines `host`, `host slots=N` (Open MPI) or `host:N` (MPICH); # starts a comment."""
    path = Path(name).expanduser()
    nodes: OrderedDict[str, Node] = OrderedDict()
    for number, line in enumerate(read_lines("--hostfile", path, raw=True), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = _HOSTFILE_LINE.match(text)
        if not match or not valid_host(match.group("host")):
            raise DaskhpcError(
                f"--hostfile {path} line {number}: {text!r} is not `host`, `host slots=N` "
                "or `host:N`"
            )
        host = match.group("host")
        count_text = match.group("slots") or match.group("colon")
        count = whole(f"--hostfile {path} line {number} slots", count_text) if count_text else 0
        cores = count or local_cores()
        nodes[host] = Node(host, count or cores, cores, None)
    if not nodes:
        raise DaskhpcError(f"--hostfile {path} lists no hosts")
    return Allocation("hostfile", tuple(nodes.values()))


def from_hosts(text: str) -> Allocation:
    names = expand("--hosts", text)
    return Allocation("hosts", tuple(Node(n, local_cores(), local_cores(), None) for n in names))


def this_machine() -> Allocation:
    return Allocation("none", (Node(socket.gethostname(), local_cores(), local_cores(), None),))


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
