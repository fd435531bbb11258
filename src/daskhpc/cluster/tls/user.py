"""One CA per user: it signs every cluster's certificates and the user's one client identity.

Every cluster of a user trusts the user's CA, so the client certificate behind current-tls
reaches all of them at once (the terminal's cluster and the JupyterLab tab's); certificates of
another user (another CA) are refused. Kept in the state directory:

    ca/                 0700  ca-key.pem, ca.pem (0600): the user's CA
    client-tls/<issue>/ 0700  ca.pem, client.pem, client-key.pem (0600): the client identity
    current-tls ->      client-tls/<issue> (daskhpc.cluster.tls.current)
    clusters/<id>/tls/  0700  ca.pem, scheduler*.pem, worker*.pem: fresh for each cluster

Validity and renewal (a start checks and renews under a lock, before it signs):
- The CA is valid for a year. It is renewed (new key) at a start that needs longer than it has
  left, when none of the user's clusters runs (they trust only the old one); with clusters
  running, the new cluster's certificates end with the CA instead, and the CA is renewed
  regardless once less than an hour is left (then everything it signed expires anyway).
- A cluster's scheduler and worker certificates end one hour after its batch job (the workers'
  lifetime), 30 days at the most; never after the CA.
- The client certificate is valid for 60 days and reissued (new key) by a start whose cluster
  would outlive it, or after the CA changed: it always outlives every running cluster, and a
  client key is in use for 30 to 60 days.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from daskhpc import paths
from daskhpc.client_config import CA_FILE
from daskhpc.cluster.state import running_clusters
from daskhpc.cluster.tls import current
from daskhpc.cluster.tls.material import (
    Authority,
    TLSFiles,
    issue,
    load_authority,
    load_tls,
    make_private_directory,
    new_authority,
    not_valid_after,
    now,
    save_authority,
)

CA_VALIDITY = datetime.timedelta(days=365)
CA_MIN_LEFT = datetime.timedelta(hours=1)
# Long enough for the longest batch allocations sites grant; clusters in a job end sooner.
CLUSTER_VALIDITY = datetime.timedelta(days=30)
AFTER_JOB_END = datetime.timedelta(hours=1)
# Twice a cluster's longest life: renewed about monthly, not at every start outside a job.
CLIENT_VALIDITY = 2 * CLUSTER_VALIDITY
CLUSTER_ROLES = ("scheduler", "worker")
LOCK_FILE = ".lock"


def cluster_tls(directory: Path, label: str, job_end: Optional[float]) -> TLSFiles:
    """Fresh scheduler and worker certificates for a new cluster in `directory`, signed by the
    user's CA (made or renewed as needed), and a client identity that reaches the cluster for
    its whole life, named by current-tls."""
    started = now()
    wanted = started + CLUSTER_VALIDITY
    if job_end is not None:
        wanted = min(wanted, datetime.datetime.fromtimestamp(job_end, datetime.timezone.utc)
                     + AFTER_JOB_END)
    with _locked():
        authority = _authority(wanted, started)
        tls = issue(authority, directory, CLUSTER_ROLES, wanted, label)
        _client_identity(authority, min(wanted, authority.not_after), started)
    return tls


def client_tls() -> TLSFiles:
    """The user's client identity, through current-tls (so a renewal is followed)."""
    return load_tls(paths.current_tls_link(), "client")


@contextmanager
def _locked() -> Iterator[None]:
    """One start at a time makes or renews the CA and the client identity (two terminals, or
    a terminal and the JupyterLab tab, may start clusters together)."""
    directory = paths.user_ca_dir()
    make_private_directory(directory)
    descriptor = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _authority(wanted: datetime.datetime, started: datetime.datetime) -> Authority:
    directory = paths.user_ca_dir()
    authority = load_authority(directory)
    if authority is not None and not _renew(authority, wanted, started):
        return authority
    authority = new_authority(f"daskhpc CA of {_user_name()}", started + CA_VALIDITY)
    save_authority(authority, directory)
    return authority


def _renew(authority: Authority, wanted: datetime.datetime,
           started: datetime.datetime) -> bool:
    if authority.not_after - started < CA_MIN_LEFT:
        return True
    return authority.not_after < wanted and not running_clusters()


def _client_identity(authority: Authority, needed: datetime.datetime,
                     started: datetime.datetime) -> None:
    """current-tls names client certificates of this CA valid until `needed`, else new ones
    are issued into a new directory, the link swapped to it at once, and older ones removed."""
    link = paths.current_tls_link()
    if _reaches(link, authority, needed):
        return
    issued = paths.client_tls_dir() / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"
    make_private_directory(issued.parent)
    issue(authority, issued, ("client",), started + CLIENT_VALIDITY, "client")
    current.point_at(issued)
    for older in issued.parent.iterdir():
        if older != issued:
            shutil.rmtree(older, ignore_errors=True)


def _reaches(link: Path, authority: Authority, needed: datetime.datetime) -> bool:
    """Whether the link names client certificates of ours, of this CA, valid until needed."""
    directory = link.resolve()
    if directory.parent != paths.client_tls_dir().resolve():
        return False  # the placeholder, or an old-style cluster's own directory
    try:
        same_ca = (directory / CA_FILE).read_bytes() == authority.cert_pem()
    except OSError:
        return False
    expires = not_valid_after(TLSFiles(directory).cert("client")[0])
    return same_ca and expires is not None and expires >= needed


def _user_name() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())
