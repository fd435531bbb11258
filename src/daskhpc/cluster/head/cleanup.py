"""After a cluster ends: reap what its records say still runs and remove the scratch of nodes
whose agent could not, then forget its files.

Used by stop-dask-cluster, by the supervisor when it ends, and by start when a start fails.
"""

from __future__ import annotations

import json
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor

from daskhpc.cluster.launchers import get_launcher
from daskhpc.cluster.node import scratch
from daskhpc.cluster.node.reap import clean_node
from daskhpc.cluster.state import ClusterState, remove_scheduler_file
from daskhpc.errors import DaskhpcError


def lost_nodes(state: ClusterState) -> list[str]:
    """Nodes the supervisor found unreachable (daskhpc.cluster.head.supervisor) whose end
    nobody has verified since (their agent, back on the network, or stop's reaping)."""
    lost: list[str] = (state.status() or {}).get("lost", [])
    records = state.node_records()
    return [host for host in lost if not records.get(host, ([], False))[1]]


def reap_leftovers(state: ClusterState, lost_too: bool = False) -> int:
    """Clean up every node whose agent did not verify its own end (its processes, its scratch);
    return how many recorded processes were alive.

    Lost nodes are left out (stop must not wait for them) unless `lost_too`: then those that
    answer are cleaned up too, and the others stay lost.
    """
    lost = set(lost_nodes(state))
    pending = {host: records for host, (records, finished) in state.node_records().items()
               if not finished and records and (lost_too or host not in lost)}
    if not pending:
        return 0
    here = socket.gethostname()
    launcher = get_launcher(state.spec.launcher, state.spec)

    def reap_node(host: str) -> int:
        record_file = state.spec.record_file(host)
        if all(item.host == here for item in pending[host]):
            return len(clean_node(record_file))
        argv = [state.spec.python, "-m", "daskhpc.cluster.node.reap", str(record_file)]
        try:
            result = launcher.run_on_node(host, argv)
        except subprocess.TimeoutExpired:
            if host in lost:
                return 0
            raise
        if result.returncode != 0:
            if host in lost:
                return 0  # still unreachable
            raise DaskhpcError(
                f"could not check {host} for leftover processes ({result.stderr.strip()}); "
                f"its records are in {record_file}"
            )
        return len(json.loads(result.stdout.strip().splitlines()[-1])["reaped"])

    with ThreadPoolExecutor(max_workers=min(32, len(pending))) as pool:
        return sum(pool.map(reap_node, pending))


def forget(state: ClusterState) -> None:
    """The cluster is gone: its scheduler file and the scheduler's scratch (left there when the
    supervisor was killed) go with it."""
    scratch.remove(state.spec.scheduler_directory)
    remove_scheduler_file(state.spec)
    state.mark_stopped()
