"""Scaling a running cluster within its allocation: which workers to start, on which node.

The allocation holds what the spec planned (every node full); `scale(n)` up to that adds named
workers to the nodes with the fewest, `scale(n)` down retires workers through the scheduler,
which moves their data to the others first, and then drops them from the targets (the node
agents end whatever has not ended yet). Past the allocation scaling is refused with one line
saying how to get more: a bigger allocation, or worker jobs submitted at start (`jobs=N`).
"""

from __future__ import annotations

from collections.abc import Iterable

from daskhpc.cluster import targets
from daskhpc.cluster.spec import ClusterSpec
from daskhpc.cluster.targets import Targets
from daskhpc.errors import DaskhpcError


def capacity(spec: ClusterSpec) -> int:
    """Workers the allocation holds: what start planned on its nodes."""
    return spec.total_workers


def check_size(spec: ClusterSpec, n: object) -> int:
    """n as a worker count this cluster can reach, or one line saying why not."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DaskhpcError(f"scale({n!r}): give a whole number of workers, 0 or more")
    if n > capacity(spec):
        raise DaskhpcError(
            f"scale({n}): the allocation holds {capacity(spec)} workers "
            f"({len(spec.nodes)} node(s) x workers per node); for more, ask for a bigger "
            "allocation, or start the cluster with jobs=N (N batch jobs of workers, as "
            "start-dask-cluster --jobs; DASKHPC_JOBQUEUE and dask-jobqueue's jobqueue.<system> "
            "settings say where they go)"
        )
    return n


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
