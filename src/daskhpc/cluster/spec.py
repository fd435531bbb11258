"""ClusterSpec: everything a cluster's processes need to know, written once as JSON.

The start command builds it (options + allocation), the supervisor and every node agent read it
from the cluster's state directory, which lives on the filesystem the nodes share. Standard
library only: node agents import this before anything else and must start fast.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Mapping, Optional

from daskhpc.client_config import jupyterhub_dashboard_link
from daskhpc.cluster import names
from daskhpc.files import write_private

SPEC_FILE = "spec.json"


@dataclass(frozen=True)
class NodeSpec:
    """One node's share of the cluster."""

    host: str  # the name the launcher reaches it by (ssh target, MPI/Slurm host name)
    workers: int
    threads_per_worker: int
    memory_limit: int  # bytes per worker; 0 = no memory management
    local: bool = False  # the node the scheduler runs on: its workers start without ssh


@dataclass(frozen=True)
class ClusterSpec:
    cluster_id: str
    cluster_dir: str  # absolute; state, process records and logs (shared filesystem)
    created: float  # epoch seconds
    launcher: str
    protocol: str  # "tls" or "tcp"
    scheduler_host: str  # address the scheduler binds to and workers connect to
    scheduler_port: int
    dashboard_port: int
    scheduler_file: str  # absolute
    nodes: tuple[NodeSpec, ...]
    python: str  # the environment's interpreter, same path on every node
    pythonpath: str  # where daskhpc is importable from, same path on every node
    interface: Optional[str] = None  # given to workers as --interface when set
    local_directory: Optional[str] = None  # user's choice; else each node picks its scratch
    # The scheduler's scratch on the supervisor's machine (daskhpc.cluster.node.scratch); empty
    # in specs of older versions (distributed's default then).
    scheduler_directory: str = ""
    death_timeout: float = 60.0
    worker_end_time: Optional[float] = None  # epoch seconds by which workers must be gone
    nanny: bool = True
    min_workers: int = 0
    timeout: float = 120.0
    tls_dir: Optional[str] = None
    worker_start_method: str = "fork"  # distributed.worker.multiprocessing-method for nannies
    # The first segment of every path the scheduler's HTTP server answers: known only through
    # the printed link and the 0600 scheduler file, so another user on the node who finds the
    # port gets 404s (daskhpc.cluster.head.dashboard). Empty: none (specs from older versions).
    dashboard_secret: str = ""

    @property
    def scheduler_address(self) -> str:
        return f"{self.protocol}://{self.scheduler_host}:{self.scheduler_port}"

    @property
    def dashboard_prefix(self) -> str:
        """The path the dashboard lives under ("/<secret>")."""
        return f"/{self.dashboard_secret}" if self.dashboard_secret else ""

    @property
    def dashboard_port_and_path(self) -> str:
        """What the scheduler reports as its dashboard "port": the port and the secret path,
        so the links distributed formats from a `{port}` template lead to the dashboard."""
        return f"{self.dashboard_port}{self.dashboard_prefix}"

    @property
    def dashboard_address(self) -> str:
        return f"http://{self.scheduler_host}:{self.dashboard_port_and_path}/status"

    def proxied_dashboard(self, environ: Mapping[str, str]) -> Optional[str]:
        """The dashboard through the user's JupyterHub server, where there is one."""
        prefix = environ.get("JUPYTERHUB_SERVICE_PREFIX")
        if not prefix:
            return None
        template = jupyterhub_dashboard_link(prefix)
        return template.format(host=self.scheduler_host, port=self.dashboard_port_and_path)

    @property
    def total_workers(self) -> int:
        return sum(node.workers for node in self.nodes)

    def node(self, host: str) -> NodeSpec:
        for node in self.nodes:
            if node.host == host:
                return node
        raise KeyError(f"{host!r} is not a node of cluster {self.cluster_id}")

    def worker_names(self, node: NodeSpec) -> list[str]:
        """Unique worker names (daskhpc.cluster.names); the supervisor counts them per node."""
        return [names.node_worker(node.host, index) for index in range(node.workers)]

    def record_file(self, host: str) -> Path:
        """Where a node's process records live (daskhpc.cluster.node.processes)."""
        return Path(self.cluster_dir) / "procs" / f"{host}.json"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ClusterSpec:
        data = json.loads(text)
        data["nodes"] = tuple(NodeSpec(**node) for node in data["nodes"])
        # A Jupyter server started before an upgrade reads specs of clusters started after it.
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def write(self) -> Path:
        """Write spec.json into the cluster directory (0600, atomic)."""
        path = Path(self.cluster_dir) / SPEC_FILE
        write_private(path, self.to_json())
        return path


def read_spec(cluster_dir: Path) -> ClusterSpec:
    return ClusterSpec.from_json((cluster_dir / SPEC_FILE).read_text())
