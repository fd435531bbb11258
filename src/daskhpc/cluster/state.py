"""A cluster's state directory: paths.clusters_dir()/<id>/ (0700) on the shared filesystem.

    spec.json          the ClusterSpec
    supervisor.json    the supervisor's process record
    status.json        workers per node, written by the supervisor while it runs
    procs/<host>.json  each node's process records (see processes.py)
    logs/              supervisor.log and one log per node session (0600)
    stopped            present once stop has verified that nothing is left
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

from daskhpc import paths
from daskhpc.cluster.node.processes import ProcessRecord, read_records
from daskhpc.cluster.spec import SPEC_FILE, ClusterSpec, read_spec
from daskhpc.errors import DaskhpcError
from daskhpc.files import write_private

SUPERVISOR_FILE = "supervisor.json"
STATUS_FILE = "status.json"
STOPPED_FILE = "stopped"


def new_cluster_id() -> str:
    """Sortable by start time, unique across users and nodes sharing the directory."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def make_cluster_dir(cluster_id: str) -> Path:
    root = paths.clusters_dir()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory = root / cluster_id
    directory.mkdir(mode=0o700)
    for sub in ("procs", "logs"):
        (directory / sub).mkdir(mode=0o700)
    return directory


class ClusterState:
    """One cluster as found on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.spec: ClusterSpec = read_spec(directory)

    @property
    def cluster_id(self) -> str:
        return self.spec.cluster_id

    def supervisor(self) -> Optional[ProcessRecord]:
        try:
            return ProcessRecord(**json.loads((self.directory / SUPERVISOR_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write_supervisor(self, item: ProcessRecord) -> None:
        write_private(self.directory / SUPERVISOR_FILE, json.dumps(asdict(item)))

    def supervisor_alive(self) -> bool:
        item = self.supervisor()
        return item is not None and item.alive()

    @property
    def stopped(self) -> bool:
        return (self.directory / STOPPED_FILE).exists()

    def mark_stopped(self) -> None:
        write_private(self.directory / STOPPED_FILE, f"{time.time()}\n")

    def node_records(self) -> dict[str, tuple[list[ProcessRecord], bool]]:
        """Per node host: its process records and whether its agent verified them all gone."""
        found = {}
        for path in sorted((self.directory / "procs").glob("*.json")):
            found[path.stem] = read_records(path)
        return found

    def status(self) -> Optional[dict[str, Any]]:
        try:
            data: dict[str, Any] = json.loads((self.directory / STATUS_FILE).read_text())
        except (OSError, ValueError):
            return None
        return data

    def write_status(self, data: dict[str, Any]) -> None:
        write_private(self.directory / STATUS_FILE, json.dumps(data))


def all_clusters() -> list[ClusterState]:
    """Every cluster with a readable spec, oldest first."""
    root = paths.clusters_dir()
    if not root.is_dir():
        return []
    found = []
    for directory in sorted(root.iterdir()):
        if (directory / SPEC_FILE).is_file():
            try:
                found.append(ClusterState(directory))
            except (OSError, ValueError, TypeError, KeyError):
                continue  # half-written by a start that died: nothing of it runs
    return sorted(found, key=lambda state: state.spec.created)


def prune_stopped(keep: int = 10) -> None:
    """Remove the state of all but the `keep` newest stopped clusters (their logs go with it)."""
    stopped = [state for state in all_clusters() if state.stopped]
    for state in stopped[:-keep] if keep else stopped:
        shutil.rmtree(state.directory, ignore_errors=True)


def running_clusters() -> list[ClusterState]:
    return [state for state in all_clusters() if not state.stopped]


def select(cluster_id: Optional[str]) -> ClusterState:
    """The cluster named, or the latest one not yet stopped."""
    if cluster_id:
        directory = paths.clusters_dir() / cluster_id
        if os.sep in cluster_id or not (directory / SPEC_FILE).is_file():
            known = ", ".join(state.cluster_id for state in running_clusters()) or "none"
            raise DaskhpcError(f"no cluster {cluster_id!r}; running clusters: {known}")
        return ClusterState(directory)
    running = running_clusters()
    if not running:
        raise DaskhpcError("no cluster is running; start one with start-dask-cluster")
    return running[-1]


def scheduler_file_field(path: Path, key: str) -> Optional[str]:
    """A text field of a scheduler file, or None when the file or field is missing or bad."""
    try:
        value = json.loads(path.read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def scheduler_file_owner(path: Path) -> Optional[str]:
    """The cluster id a scheduler file names (we add it), or None for foreign/unreadable files."""
    return scheduler_file_field(path, "daskhpc_cluster")


def remove_scheduler_file(spec: ClusterSpec) -> None:
    """Remove the scheduler file only while it still names this cluster."""
    path = Path(spec.scheduler_file)
    if scheduler_file_owner(path) == spec.cluster_id:
        path.unlink(missing_ok=True)
