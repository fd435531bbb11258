"""Which workers each node runs: `<cluster_dir>/targets.json`, the channel for scaling.

Whoever scales the cluster (daskhpc.cluster.head.scaling, from an HPCCluster) writes it; each node
agent reads it about every quarter second over the shared filesystem, starts the workers named
for its node that it has not started yet and ends those no longer named. A file rather than a
message to the agents because every launcher (ssh, local, mpi, srun) gives its agents the
shared filesystem, but not all give them a writable stdin. Until the cluster is first scaled
the file does not exist and every node runs the workers its spec planned.

Worker names are `<host>-<n>` and never reused, so a name always means one process and the
scheduler, the agents and the status command agree on which node a worker belongs to.
Standard library only (node agents import it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from daskhpc.cluster.spec import ClusterSpec
from daskhpc.files import write_private

TARGETS_FILE = "targets.json"
LOCK_FILE = ".targets.lock"


@dataclass(frozen=True)
class Targets:
    nodes: dict[str, tuple[str, ...]]  # host -> names of the workers it should run
    next_index: int  # the number in the next new worker's name

    @property
    def total(self) -> int:
        return sum(len(names) for names in self.nodes.values())

    def names(self) -> set[str]:
        return {name for names in self.nodes.values() for name in names}


def planned(spec: ClusterSpec) -> Targets:
    """What the spec starts with: every node full."""
    nodes = {node.host: tuple(spec.worker_names(node)) for node in spec.nodes}
    return Targets(nodes, max((node.workers for node in spec.nodes), default=0))


def path(spec: ClusterSpec) -> Path:
    return Path(spec.cluster_dir) / TARGETS_FILE


def read(spec: ClusterSpec) -> Targets:
    try:
        data = json.loads(path(spec).read_text())
    except FileNotFoundError:
        return planned(spec)
    return Targets({host: tuple(names) for host, names in data["nodes"].items()},
                   int(data["next_index"]))


def write(spec: ClusterSpec, targets: Targets) -> None:
    payload = {"nodes": {host: list(names) for host, names in targets.nodes.items()},
               "next_index": targets.next_index}
    write_private(path(spec), json.dumps(payload))


def changed_since(spec: ClusterSpec, seen: Optional[int]) -> Optional[int]:
    """The file's modification stamp if it differs from `seen` (a cheap stat), else None."""
    try:
        stamp = os.stat(path(spec)).st_mtime_ns
    except FileNotFoundError:
        stamp = 0
    return None if stamp == seen else stamp


@contextlib.contextmanager
def locked(spec: ClusterSpec) -> Iterator[None]:
    """Serialise read-change-write among the processes scaling one cluster."""
    descriptor = os.open(Path(spec.cluster_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
