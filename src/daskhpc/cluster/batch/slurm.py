"""Slurm: nodes from SLURM_JOB_NODELIST (every bracket form), cores from
SLURM_JOB_CPUS_PER_NODE, memory from SLURM_MEM_PER_NODE / SLURM_MEM_PER_CPU; the end from
SLURM_JOB_END_TIME (Slurm 23.02 and later), else squeue's time left; srun as the launcher."""

from __future__ import annotations

import re
import shutil
from typing import Callable, Mapping, Optional

from daskhpc.cluster.batch import hosts
from daskhpc.cluster.batch.base import Allocation, BatchSystem, Node, Runner, expand, whole
from daskhpc.errors import DaskhpcError

_NO_LIMIT = {"UNLIMITED", "NOT_SET", "INVALID", "NONE", "N/A", ""}
_CPUS_ITEM = re.compile(r"^(\d+)(?:\(x(\d+)\))?$")


def parse_slurm_duration(text: str) -> Optional[float]:
    """Seconds in Slurm's time format: [days-]hours:minutes:seconds, minutes:seconds, minutes.

    None for Slurm's words for "no limit" (UNLIMITED, NOT_SET, ...).
    """
    text = text.strip()
    if text.upper() in _NO_LIMIT:
        return None
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not match:
        raise ValueError(f"not a Slurm duration: {text!r}")
    days, first, second, third = match.groups()
    if days is not None:  # days-hours[:minutes[:seconds]]
        hours, minutes, seconds = int(first), int(second or 0), int(third or 0)
    elif third is not None:  # hours:minutes:seconds
        hours, minutes, seconds = int(first), int(second), int(third)
    elif second is not None:  # minutes:seconds
        hours, minutes, seconds = 0, int(first), int(second)
    else:  # minutes
        hours, minutes, seconds = 0, int(first), 0
    return float(((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds)


def _cpus_per_node(environ: Mapping[str, str], count: int) -> list[int]:
    """SLURM_JOB_CPUS_PER_NODE is run-length encoded: "2(x3),1" = 2,2,2,1."""
    text = environ.get("SLURM_JOB_CPUS_PER_NODE")
    if not text:
        per_node = environ.get("SLURM_CPUS_ON_NODE")
        if per_node:
            return [whole("SLURM_CPUS_ON_NODE", per_node)] * count
        return [hosts.local_cores()] * count
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


def _memory(environ: Mapping[str, str], cpus: list[int]) -> list[Optional[int]]:
    """SLURM_MEM_PER_NODE / SLURM_MEM_PER_CPU are in MiB; 0 means "all of the node"."""
    per_node = environ.get("SLURM_MEM_PER_NODE")
    if per_node:
        mib = whole("SLURM_MEM_PER_NODE", per_node, minimum=0)
        return [mib * 2**20 if mib else None] * len(cpus)
    per_cpu = environ.get("SLURM_MEM_PER_CPU")
    if per_cpu:
        mib = whole("SLURM_MEM_PER_CPU", per_cpu, minimum=0)
        return [count * mib * 2**20 if mib else None for count in cpus]
    return [None] * len(cpus)


class Slurm(BatchSystem):
    def allocation(self, environ: Mapping[str, str]) -> Allocation:
        text = environ.get("SLURM_JOB_NODELIST") or environ["SLURM_NODELIST"]
        names = expand("SLURM_JOB_NODELIST", text)
        cpus = _cpus_per_node(environ, len(names))
        memory = _memory(environ, cpus)
        nodes = tuple(Node(name, count, count, mem)
                      for name, count, mem in zip(names, cpus, memory))
        end = environ.get("SLURM_JOB_END_TIME")
        return Allocation(self.name, nodes, environ.get("SLURM_JOB_ID"),
                          float(end) if end and end.isdigit() else None)

    def end_time(self, environ: Mapping[str, str], run: Runner,
                 now: Callable[[], float]) -> Optional[float]:
        end = environ.get("SLURM_JOB_END_TIME", "").strip()
        if end.isdigit() and int(end) > 0:
            return float(end)
        job = environ.get("SLURM_JOB_ID", "").strip()
        if not job:
            return None
        left = run(["squeue", "--noheader", "--jobs", job, "--format", "%L"])
        if left is None:
            return None
        try:
            seconds = parse_slurm_duration(left)
        except ValueError:
            return None
        return None if seconds is None else now() + seconds

    def launcher(self, environ: Mapping[str, str]) -> Optional[tuple[str, str]]:
        job = environ.get("SLURM_JOB_ID")
        if job and shutil.which("srun"):
            return "srun", f"inside Slurm job {job}: one srun step on its nodes"
        return None


SYSTEM = Slurm("slurm", 10, "SLURM_JOB_ID", ("SLURM_JOB_NODELIST", "SLURM_NODELIST"),
               "dask_jobqueue.slurm:SLURMJob", "sbatch")
