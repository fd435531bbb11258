"""stop-dask-cluster: orderly shutdown through the supervisor, then proof that nothing is left.

The supervisor gets SIGTERM and ends every node session; each node agent verifies its node is
clean and marks its record file finished. Nodes not marked finished (supervisor killed, agent
killed) are reaped from their records: by PID + start time, never by process name; their scratch
goes too. A node lost while the cluster ran is left out; stopping the cluster again reaches it.
"""

from __future__ import annotations

import os
import signal
import socket
import time

from daskhpc.cluster.head import jobqueue
from daskhpc.cluster.head.cleanup import forget, lost_nodes, reap_leftovers
from daskhpc.cluster.node.processes import ProcessRecord
from daskhpc.cluster.state import ClusterState, running_clusters, select
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
        lost = lost_nodes(state)
        extra = f"; {reaped} leftover process(es) ended" if reaped else ""
        checked = len(state.spec.nodes) - len(lost)
        print(f"stopped cluster {state.cluster_id} in {time.monotonic() - started:.1f} s"
              f"; no process of it is left on its {checked} node(s){extra}")
        if lost:
            print(f"not checked: {', '.join(lost)}, lost while the cluster ran (unreachable); "
                  f"its workers exit by themselves {state.spec.death_timeout:g} s after losing "
                  "the scheduler and take their files with them; if the node went down, run "
                  f"stop-dask-cluster {state.cluster_id} again once it is back to remove them")
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
    # Stopped before: asked again to clean up, the nodes lost then included (back by now?).
    reaped = reap_leftovers(state, lost_too=state.stopped)
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
