"""dask-cluster-status: workers, threads and memory per node, dashboard, age (--json too).

Reads what the supervisor keeps in the cluster's state directory: no connection to the
scheduler, no import of distributed, so it answers at once. A cluster whose supervisor is gone
has no workers (whatever it last wrote), and, as with `systemctl status`, the exit code is then
NOT_RUNNING.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from daskhpc.cluster import targets
from daskhpc.cluster.state import ClusterState, running_clusters, select
from daskhpc.options import StatusOptions
from daskhpc.units import format_bytes

NOT_RUNNING = 3  # exit code when a cluster shown is not running (systemctl's)
_NONE = {"workers": 0, "threads": 0, "memory": 0}


def describe(state: ClusterState) -> dict[str, Any]:
    spec = state.spec
    running = state.supervisor_alive()
    # What a dead supervisor wrote last is no longer true: a dead cluster has no workers.
    status = (state.status() if running else None) or {"nodes": {}, "failed": [], "lost": []}
    seen = status["nodes"]
    wanted = targets.read(spec).nodes  # the planned workers, or what scaling asked for since
    nodes = [{"host": node.host, "expected_workers": len(wanted.get(node.host, ())),
              **seen.get(node.host, _NONE)} for node in spec.nodes]
    # Workers of batch jobs (--jobs, HPCCluster.scale): a row per job, as the supervisor
    # counted them (daskhpc.cluster.names).
    hosts = {node.host for node in spec.nodes}
    nodes += [{"host": place, "expected_workers": None, **counts}
              for place, counts in sorted(seen.items()) if place not in hosts]
    return {
        "id": spec.cluster_id,
        "running": running,
        "state": "running" if running else "dead (stop-dask-cluster cleans up)",
        "launcher": spec.launcher,
        "scheduler": spec.scheduler_address,
        "dashboard": spec.dashboard_address,
        "dashboard_jupyterhub": spec.proxied_dashboard(os.environ),
        "scheduler_file": spec.scheduler_file,
        "logs": f"{spec.cluster_dir}/logs",
        "age_seconds": round(time.time() - spec.created, 1),
        "workers": sum(node["workers"] for node in nodes),
        "threads": sum(node["threads"] for node in nodes),
        "memory": sum(node["memory"] for node in nodes),
        "nodes": nodes,
        "failed_nodes": status["failed"],
        "lost_nodes": status.get("lost", []),
    }


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
        expected = node["expected_workers"]
        workers = f"{node['workers']}" + ("" if expected is None else f"/{expected}")
        lines.append(f"  {node['host']:<24} {workers:>9} {node['threads']:>8} "
                     f"{format_bytes(node['memory']):>12}")
    lines.append(f"  {'total':<24} {info['workers']:>9} {info['threads']:>8} "
                 f"{format_bytes(info['memory']):>12}")
    if info["failed_nodes"]:
        lost = set(info["lost_nodes"])
        named = [f"{host} (unreachable)" if host in lost else host
                 for host in info["failed_nodes"]]
        lines.append(f"  failed nodes:   {', '.join(named)}: no workers there; logs in "
                     f"{info['logs']}")
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
    return 0 if all(info["running"] for info in infos) else NOT_RUNNING
