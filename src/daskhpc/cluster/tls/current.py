"""The current-tls link: what every client in the user's environments is configured with.

daskhpc.client_config sets Dask's client TLS paths *through* the link, at interpreter start.
Following the link, a kernel opened before `start-dask-cluster`, or kept across a restart,
reaches the new cluster. Dask loads these files whenever a client connects, even on tcp:// (a
LocalCluster), so the link must always resolve to valid files: the latest cluster's or, when
none runs, a placeholder's that no cluster trusts. The certificates themselves are
daskhpc.cluster.tls.material's.
"""

from __future__ import annotations

import os
from pathlib import Path

from daskhpc import paths
from daskhpc.client_config import CA_FILE
from daskhpc.cluster.state import running_clusters
from daskhpc.cluster.tls.material import ClusterTLS, create_cluster_tls, load_cluster_tls
from daskhpc.errors import DaskhpcError
from daskhpc.files import swap_link


def set_current(tls: ClusterTLS) -> None:
    """Point the current-tls link at this cluster (start-dask-cluster, once it is ready)."""
    _point_link_at(tls.directory)


def clear_current(tls: ClusterTLS) -> None:
    """The cluster ended: if the link names it, point it at the latest other cluster still
    running with TLS or, with none, at the placeholder."""
    try:
        target = Path(os.readlink(paths.current_tls_link()))
    except OSError:
        return
    if target == tls.directory.resolve():
        successor = _latest_other_cluster(tls)
        _point_link_at(successor.directory if successor else _placeholder().directory)


def _latest_other_cluster(ended: ClusterTLS) -> ClusterTLS | None:
    for state in reversed(running_clusters()):  # newest first
        tls_dir = state.spec.tls_dir
        if (tls_dir and Path(tls_dir).resolve() != ended.directory.resolve()
                and Path(tls_dir, CA_FILE).is_file()):
            return ClusterTLS(Path(tls_dir))
    return None


def ensure_current() -> None:
    """Make the link resolve (the installer calls this, so even a kernel opened before the
    user's first cluster is configured); a link to a running cluster is left alone."""
    if not paths.current_tls_link().exists():  # missing, or its cluster's files are gone
        _point_link_at(_placeholder().directory)


def _placeholder() -> ClusterTLS:
    directory = paths.placeholder_tls_dir()
    try:
        return load_cluster_tls(directory)
    except DaskhpcError:  # never made, or damaged: make it (again)
        return create_cluster_tls(directory)


def _point_link_at(directory: Path) -> None:
    link = paths.current_tls_link()
    link.parent.mkdir(parents=True, exist_ok=True)
    swap_link(link, directory.resolve())
