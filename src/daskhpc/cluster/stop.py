"""stop-dask-cluster: orderly shutdown through the supervisor, then proof that nothing is left.

The supervisor gets SIGTERM and ends every node session; each node agent verifies its node is
clean and marks its record file finished. Nodes not marked finished (supervisor killed, node
lost) are reaped from their records: by PID + start time, never by process name.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from daskhpc.cluster import jobqueue
from daskhpc.cluster.launchers import get_launcher
from daskhpc.cluster.processes import ProcessRecord, reap
from daskhpc.cluster.state import ClusterState, remove_scheduler_file, running_clusters, select
from daskhpc.errors import DaskhpcError
from daskhpc.options import StopOptions

SUPERVISOR_GRACE = 30.0  # seconds for an orderly shutdown before the supervisor is killed


def run(options: StopOptions) -> int:
    targets = running_clusters() if options.all else [select(options.cluster_id)]
    if not targets:
        print("no cluster is running")
        return 0
    for state in targets:
        started = time.monotonic()
        reaped = stop_cluster(state)
        extra = f"; {reaped} leftover process(es) ended" if reaped else ""
        print(f"stopped cluster {state.cluster_id} in {time.monotonic() - started:.1f} s"
              f"; no process of it is left on its {len(state.spec.nodes)} node(s){extra}")
    return 0


def stop_cluster(state: ClusterState) -> int:
    """Shut the cluster down and make sure every recorded process is gone; count leftovers."""
    supervisor = state.supervisor()
    if supervisor is not None and supervisor.host != socket.gethostname():
        raise DaskhpcError(
            f"cluster {state.cluster_id} was started on {supervisor.host}; "
            "run stop-dask-cluster there"
        )
    jobqueue.cancel_recorded(state.directory)
    if supervisor is not None:
        end_supervisor(supervisor)
    reaped = reap_leftovers(state)
    forget(state)
    return reaped


def end_supervisor(supervisor: ProcessRecord) -> None:
    if not supervisor.alive():
        return
    os.kill(supervisor.pid, signal.SIGTERM)
    deadline = time.monotonic() + SUPERVISOR_GRACE
    while supervisor.alive():
        if time.monotonic() > deadline:
            # its children die with it (PR_SET_PDEATHSIG); reap_leftovers checks the nodes
            os.kill(supervisor.pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.01)


def reap_leftovers(state: ClusterState) -> int:
    """Reap every node whose agent did not verify its own end; return how many were alive."""
    pending = {host: records for host, (records, finished) in state.node_records().items()
               if not finished and records}
    if not pending:
        return 0
    here = socket.gethostname()
    launcher = get_launcher(state.spec.launcher, state.spec)

    def reap_node(host: str) -> int:
        records = pending[host]
        if all(item.host == here for item in records):
            return len(reap(records))
        record_file = Path(state.spec.cluster_dir) / "procs" / f"{host}.json"
        argv = [state.spec.python, "-m", "daskhpc.cluster.reap", str(record_file)]
        result = launcher.run_on_node(host, argv)
        if result.returncode != 0:
            raise DaskhpcError(
                f"could not check {host} for leftover processes ({result.stderr.strip()}); "
                f"its records are in {record_file}"
            )
        return len(json.loads(result.stdout.strip().splitlines()[-1])["reaped"])

    with ThreadPoolExecutor(max_workers=min(32, len(pending))) as pool:
        return sum(pool.map(reap_node, pending))


def forget(state: ClusterState) -> None:
    """The cluster is gone: its scheduler file and the client TLS pointer go with it."""
    if state.spec.tls_dir:
        from daskhpc.cluster.security import ClusterTLS, clear_current

        clear_current(ClusterTLS(Path(state.spec.tls_dir)))
    remove_scheduler_file(state.spec)
    state.mark_stopped()
