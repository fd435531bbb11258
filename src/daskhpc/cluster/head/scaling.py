"""Scaling a running cluster within its allocation: which workers to start, on which node.

The allocation holds what the spec planned (every node full); `scale(n)` up to that adds named
workers to the nodes with the fewest, `scale(n)` down retires workers through the scheduler,
which moves their data to the others first, and then drops them from the targets (the node
agents end whatever has not ended yet). Past the allocation, with worker jobs configured (the
batch system named by DASKHPC_JOBQUEUE, or jobs submitted at start), each further worker is a
batch job of one worker (daskhpc.cluster.head.jobqueue), retired first and cancelled when scaling
down; without, scaling there is refused with one line saying what to configure.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from daskhpc.cluster import targets
from daskhpc.cluster.head import jobqueue
from daskhpc.cluster.spec import ClusterSpec
from daskhpc.cluster.targets import Targets
from daskhpc.errors import DaskhpcError


def capacity(spec: ClusterSpec) -> int:
    """Workers the allocation holds: what start planned on its nodes."""
    return spec.total_workers


def jobs_configured(spec: ClusterSpec, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether growing past the allocation may submit worker jobs: a batch system was chosen
    for them (DASKHPC_JOBQUEUE), or the cluster already has some (started with jobs=N)."""
    return bool(environ.get("DASKHPC_JOBQUEUE", "").strip()) or bool(
        jobqueue.recorded(Path(spec.cluster_dir)).get("jobs"))


def check_size(spec: ClusterSpec, n: object, environ: Mapping[str, str] = os.environ) -> int:
    """n as a worker count this cluster can reach, or one line saying why not."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DaskhpcError(f"scale({n!r}): give a whole number of workers, 0 or more")
    if n > capacity(spec) and not jobs_configured(spec, environ):
        raise DaskhpcError(
            f"scale({n}): the allocation holds {capacity(spec)} workers "
            f"({len(spec.nodes)} node(s) x workers per node) and no worker jobs are configured; "
            "set DASKHPC_JOBQUEUE (slurm, pbs, sge or lsf; queue, account and walltime in "
            "dask-jobqueue's jobqueue.<system> settings) to grow with batch jobs, start with "
            "jobs=N, or ask for a bigger allocation"
        )
    return n


def job_workers(spec: ClusterSpec) -> list[str]:
    """Names of the one-worker jobs' workers, oldest first."""
    return list(jobqueue.recorded(Path(spec.cluster_dir)).get("names", {}).values())


def add_jobs(spec: ClusterSpec, count: int) -> None:
    jobqueue.submit_jobs(spec, count, os.environ, one_worker=True)


def cancel_jobs(spec: ClusterSpec, names: Iterable[str]) -> None:
    jobqueue.cancel_named(Path(spec.cluster_dir), names)


def grown(spec: ClusterSpec, current: Targets, n: int) -> Targets:
    """Targets with new workers added, up to n in all and each node's planned count."""
    nodes = {node.host: list(current.nodes.get(node.host, ())) for node in spec.nodes}
    room = {node.host: node.workers for node in spec.nodes}
    index = current.next_index
    total = sum(len(names) for names in nodes.values())
    while total < n:
        open_hosts = [host for host in nodes if len(nodes[host]) < room[host]]
        if not open_hosts:
            break
        host = min(open_hosts, key=lambda name: len(nodes[name]))  # spread evenly
        nodes[host].append(f"{host}-{index}")
        index += 1
        total += 1
    return Targets({host: tuple(names) for host, names in nodes.items()}, index)


def without(current: Targets, names: Iterable[str]) -> Targets:
    gone = set(names)
    return Targets({host: tuple(name for name in listed if name not in gone)
                    for host, listed in current.nodes.items()}, current.next_index)


def add_workers(spec: ClusterSpec, n: int) -> Targets:
    """Name workers up to n on the allocated nodes; the agents start them."""
    with targets.locked(spec):
        current = targets.read(spec)
        changed = grown(spec, current, n)
        if changed != current:
            targets.write(spec, changed)
        return changed


def remove_workers(spec: ClusterSpec, names: Iterable[str]) -> Targets:
    """Drop workers from the targets; their agents end them if they still run."""
    with targets.locked(spec):
        changed = without(targets.read(spec), names)
        targets.write(spec, changed)
        return changed
