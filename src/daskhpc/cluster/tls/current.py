"""The current-tls link: what every client in the user's environments is configured with.

daskhpc.client_config sets Dask's client TLS paths *through* the link, at interpreter start.
It names the user's client certificates (daskhpc.cluster.tls.user), which every cluster of the
user trusts; it moves only when they are first made or renewed, and a kernel opened earlier
follows it. Dask loads these files whenever a client connects, even on tcp:// (a LocalCluster),
so the link must always resolve to valid files: before the user's first cluster it names a
placeholder's that no cluster trusts.
"""

from __future__ import annotations

from pathlib import Path

from daskhpc import paths
from daskhpc.cluster.tls.material import TLSFiles, create_standalone_tls, load_tls
from daskhpc.errors import DaskhpcError
from daskhpc.files import swap_link


def point_at(directory: Path) -> None:
    """Point the current-tls link at `directory`, in one rename."""
    link = paths.current_tls_link()
    link.parent.mkdir(parents=True, exist_ok=True)
    swap_link(link, directory.resolve())


def ensure_current() -> None:
    """Make the link resolve (the installer calls this, so even a kernel opened before the
    user's first cluster is configured); a link that resolves is left alone."""
    if not paths.current_tls_link().exists():  # missing, or its files are gone
        point_at(_placeholder().directory)


def _placeholder() -> TLSFiles:
    directory = paths.placeholder_tls_dir()
    try:
        return load_tls(directory, "client")
    except DaskhpcError:  # never made, or damaged: make it (again)
        return create_standalone_tls(directory, ("client",))
