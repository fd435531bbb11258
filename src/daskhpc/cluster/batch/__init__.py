"""Batch systems: where the nodes, their cores and memory, and the job's end come from.

One module per batch system (slurm, pbs, lsf, sge), each defining SYSTEM, an instance of a
`BatchSystem` subclass (base.py) that holds everything daskhpc knows of that system: how to
recognise its job's environment, the nodes with their cores and memory, when the job ends, the
dask-jobqueue class for --jobs and the launcher it prefers. Adding a system is adding one
module here: they are found by listing this package. hosts.py is the user's own list
(--hostfile, --hosts) and this machine alone, used when no batch job is found.

Precedence: --hostfile or --hosts, then the systems in their `precedence` order, then this
machine alone.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
import time
from typing import Callable, Mapping, Optional

from daskhpc.cluster.batch import hosts as user_hosts
from daskhpc.cluster.batch.base import Allocation, BatchSystem, Runner, run_query


@functools.cache
def systems() -> tuple[BatchSystem, ...]:
    """Every batch system module's SYSTEM, in detection order."""
    found = []
    for module in pkgutil.iter_modules(__path__):
        system = getattr(importlib.import_module(f"{__name__}.{module.name}"), "SYSTEM", None)
        if isinstance(system, BatchSystem):
            found.append(system)
    return tuple(sorted(found, key=lambda system: system.precedence))


def by_name(name: str) -> Optional[BatchSystem]:
    return next((system for system in systems() if system.name == name), None)


def detect(environ: Mapping[str, str], hostfile: Optional[str] = None,
           hosts: Optional[str] = None) -> Allocation:
    """The nodes to use: the user's list, else the batch job's, else this machine."""
    if hostfile is not None:
        return user_hosts.from_hostfile(hostfile)
    if hosts is not None:
        return user_hosts.from_hosts(hosts)
    for system in systems():
        if system.in_allocation(environ):
            return system.allocation(environ)
    return user_hosts.this_machine()


def job_end_time(environ: Mapping[str, str], run: Runner = run_query,
                 now: Callable[[], float] = time.time) -> Optional[float]:
    """Epoch seconds at which the batch job we run in is killed, or None: no job, no limit, or
    the batch system does not answer (workers then simply get no lifetime)."""
    for system in systems():
        if environ.get(system.job_id_variable):
            return system.end_time(environ, run, now)
    return None


def with_job_end(allocation: Allocation, environ: Mapping[str, str]) -> Allocation:
    """The allocation with the end of the job we run in, if it had none (any node source: a
    --hostfile inside a job still ends with the job)."""
    if allocation.end_time is not None:
        return allocation
    end = job_end_time(environ)
    return allocation if end is None else dataclasses.replace(allocation, end_time=end)
