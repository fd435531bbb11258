"""Which hosts the user's Jupyter server may proxy to: localhost and the nodes of running clusters.

For jupyter-server-proxy's `c.ServerProxy.host_allowlist`, which calls `allowed(handler, host)` on
every proxied request. Allowing every host would let anyone who can reach the Jupyter server
use it as a relay into the cluster network (rejected upstream, distributed PR#6966); allowing a
node after its cluster ended would hand the user's cookies to whoever listens on that port next
(jupyter-server-proxy#590). So: exactly the hosts of clusters whose scheduler is up, read anew
from the cluster state on each request (a few small files), and their addresses.

The cluster state is daskhpc.cluster.state's: spec.json, the `stopped` marker, supervisor.json
and the scheduler file's `daskhpc_cluster` field.

Standard library only: it runs inside the Jupyter server, which may live in another environment.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from daskhpc.cluster import state as cluster_state
from daskhpc.cluster.spec import ClusterSpec
from daskhpc.cluster.state import scheduler_file_owner

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def allowed(handler: Any, host: str) -> bool:
    """True for localhost and the names and addresses of the user's running clusters' nodes."""
    host = host.strip("[]").lower()  # "[::1]" as it appears in URLs
    if host in LOCAL_HOSTS:
        return True
    return host in cluster_hosts()


def cluster_hosts() -> set[str]:
    """Names and addresses of every node (and scheduler address) of the running clusters."""
    hosts: set[str] = set()
    for spec in running_clusters():
        names = {spec.scheduler_host, *(node.host for node in spec.nodes)}
        for name in names:
            hosts.add(name.lower())
            hosts.update(_addresses(name))
    return hosts


def running_clusters() -> Iterator[ClusterSpec]:
    """Clusters not stopped whose scheduler file still names them (the supervisor removes it
    when the scheduler closes; a newer cluster on the same file replaces it), and whose
    supervisor, when it ran on this host, is still alive (it is the scheduler)."""
    this_host = socket.gethostname()
    for state in cluster_state.running_clusters():
        if scheduler_file_owner(Path(state.spec.scheduler_file)) != state.cluster_id:
            continue
        supervisor = state.supervisor()
        if supervisor is not None and supervisor.host == this_host and not supervisor.alive():
            continue
        yield state.spec


@functools.lru_cache(maxsize=1024)
def _addresses(name: str) -> frozenset[str]:
    """Addresses a node name resolves to; cached, as node addresses do not change during a job."""
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return frozenset()
    return frozenset(str(info[4][0]).lower() for info in infos)
