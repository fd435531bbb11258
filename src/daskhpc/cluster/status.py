"""dask-cluster-status: workers, threads and memory per node, dashboard, age (--json too).

Reads what the supervisor keeps in the cluster's state directory: no connection to the
scheduler, no import of distributed, so it answers at once.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from daskhpc.cluster.state import ClusterState, running_clusters, select
from daskhpc.options import StatusOptions


def describe(state: ClusterState) -> dict[str, Any]:
    spec = state.spec
    status = state.status() or {"nodes": {}, "failed": []}
    nodes = []
    for node in spec.nodes:
        seen = status["nodes"].get(node.host, {"workers": 0, "threads": 0, "memory": 0})
        nodes.append({"host": node.host, "expected_workers": node.workers, **seen})
    return {
        "id": spec.cluster_id,
        "state": "running" if state.supervisor_alive() else "dead (stop-dask-cluster cleans up)",
        "launcher": spec.launcher,
        "scheduler": spec.scheduler_address,
        "dashboard": spec.dashboard_address,
        "dashboard_jupyterhub": spec.proxied_dashboard(os.environ),
        "scheduler_file": spec.scheduler_file,
        "age_seconds": round(time.time() - spec.created, 1),
        "workers": sum(node["workers"] for node in nodes),
        "threads": sum(node["threads"] for node in nodes),
        "memory": sum(node["memory"] for node in nodes),
        "nodes": nodes,
        "failed_nodes": status["failed"],
    }


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{count:.0f} B"
        count /= 1024
    return str(count)


def _age(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def render(info: dict[str, Any]) -> str:
    lines = [
        f"cluster {info['id']}: {info['state']}, up {_age(info['age_seconds'])}, "
        f"launcher {info['launcher']}",
        f"  scheduler:      {info['scheduler']}",
        f"  dashboard:      {info['dashboard']}",
    ]
    if info["dashboard_jupyterhub"]:
        lines.append(f"  via JupyterHub: {info['dashboard_jupyterhub']}")
    lines.append(f"  scheduler file: {info['scheduler_file']}")
    lines.append(f"  {'node':<24} {'workers':>9} {'threads':>8} {'memory':>12}")
    for node in info["nodes"]:
        workers = f"{node['workers']}/{node['expected_workers']}"
        lines.append(f"  {node['host']:<24} {workers:>9} {node['threads']:>8} "
                     f"{_size(node['memory']):>12}")
    lines.append(f"  {'total':<24} {info['workers']:>9} {info['threads']:>8} "
                 f"{_size(info['memory']):>12}")
    return "\n".join(lines)


def run(options: StatusOptions) -> int:
    states = running_clusters() if options.all else [select(options.cluster_id)]
    infos = [describe(state) for state in states]
    if options.json:
        print(json.dumps(infos if options.all else infos[0], indent=2))
    elif not infos:
        print("no cluster is running")
    else:
        print("\n\n".join(render(info) for info in infos))
    return 0
