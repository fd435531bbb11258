"""The user's CA, its clusters' certificates and the client identity: private on disk, renewed
before they expire, trusted by the user's clusters only."""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import ssl
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daskhpc import paths
from daskhpc.cluster.spec import ClusterSpec, NodeSpec
from daskhpc.cluster.state import ClusterState
from daskhpc.cluster.tls import current as current_tls
from daskhpc.cluster.tls import user
from daskhpc.cluster.tls.material import (
    TLSFiles,
    create_standalone_tls,
    issue,
    load_authority,
    load_tls,
    new_authority,
    not_valid_after,
    now,
    save_authority,
)
from daskhpc.errors import DaskhpcError

DAY = datetime.timedelta(days=1)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DASKHPC_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The worst umask a user can have: nothing is masked, so only explicit modes protect."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _new_cluster(cluster_id: str, job_end: float | None = None) -> TLSFiles:
    """What start-dask-cluster does for a new cluster's certificates."""
    return user.cluster_tls(paths.clusters_dir() / cluster_id / "tls", cluster_id, job_end)


def _client() -> TLSFiles:
    return TLSFiles(paths.current_tls_link().resolve())


def test_every_directory_and_file_is_private_even_with_umask_0(
    state_dir: Path, permissive_umask: None
) -> None:
    cluster = _new_cluster("one")
    client = _client()

    expected = {
        paths.user_ca_dir(): [".lock", "ca-key.pem", "ca.pem"],
        cluster.directory: ["ca.pem", "scheduler-key.pem", "scheduler.pem", "worker-key.pem",
                            "worker.pem"],
        client.directory: ["ca.pem", "client-key.pem", "client.pem"],
    }
    for directory, names in expected.items():
        assert _mode(directory) == 0o700, directory
        files = sorted(directory.iterdir())
        assert [path.name for path in files] == names
        assert {path.name: _mode(path) for path in files} == {name: 0o600 for name in names}
    assert _mode(paths.client_tls_dir()) == 0o700
    # Private keys: the CA's in its own directory only, one per role elsewhere.
    holders = sorted(str(path.relative_to(state_dir)) for path in state_dir.rglob("*.pem")
                     if "PRIVATE KEY" in path.read_text())
    assert holders == sorted([
        "ca/ca-key.pem", "clusters/one/tls/scheduler-key.pem", "clusters/one/tls/worker-key.pem",
        str(client.directory.relative_to(state_dir) / "client-key.pem"),
    ])


def test_command_line_names_paths_and_no_key_material(state_dir: Path) -> None:
    tls = _new_cluster("one")
    cert_path, key_path = tls.cert("worker")

    arguments = tls.cli_args("worker")

    assert arguments == [
        "--tls-ca-file", str(tls.ca_file), "--tls-cert", str(cert_path), "--tls-key", str(key_path)
    ]
    assert not any("PRIVATE KEY" in argument for argument in arguments)


def _handshake(server: TLSFiles, client: TLSFiles) -> None:
    """A TLS handshake with the contexts distributed builds: raises ssl.SSLError if refused."""
    server_context = server.security("scheduler").get_listen_args("scheduler")["ssl_context"]
    client_context = client.security("client").get_connection_args("client")["ssl_context"]
    server_socket, client_socket = socket.socketpair()
    server_errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server_context.wrap_socket(server_socket, server_side=True) as wrapped:
                wrapped.recv(1)
        except (ssl.SSLError, OSError) as error:
            server_errors.append(error)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_context.wrap_socket(client_socket) as wrapped:
            wrapped.sendall(b"x")
    finally:
        client_socket.close()
        thread.join(timeout=30)
    if server_errors:
        raise server_errors[0]


def test_one_client_identity_reaches_every_cluster_of_its_user_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASKHPC_STATE_DIR", str(tmp_path / "ours"))
    first, second = _new_cluster("first"), _new_cluster("second")
    ours = _client()
    _handshake(server=first, client=ours)
    _handshake(server=second, client=ours)
    assert _client() == ours  # the second start kept the client identity

    monkeypatch.setenv("DASKHPC_STATE_DIR", str(tmp_path / "theirs"))  # another user's CA
    their_cluster = _new_cluster("theirs")
    theirs = _client()
    for server, client in ((first, theirs), (second, theirs), (their_cluster, ours)):
        with pytest.raises((ssl.SSLError, OSError)):
            _handshake(server=server, client=client)


def test_security_object_requires_encryption(state_dir: Path) -> None:
    _new_cluster("one")
    client_security = user.client_tls().security()
    assert client_security.require_encryption
    link = paths.current_tls_link()
    assert client_security.tls_client_cert == str(link / "client.pem")  # follows renewals
    assert client_security.tls_ca_file == str(link / "ca.pem")


def test_load_refuses_missing_and_exposed_files(state_dir: Path) -> None:
    tls = _new_cluster("one")
    assert load_tls(tls.directory, "worker") == tls

    os.chmod(tls.cert("worker")[1], 0o644)
    with pytest.raises(DaskhpcError, match="accessible to other users"):
        load_tls(tls.directory, "worker")

    tls.cert("worker")[1].unlink()
    with pytest.raises(DaskhpcError, match=r"worker-key\.pem"):
        load_tls(tls.directory, "worker")


def test_an_exposed_ca_is_refused_with_the_way_out(state_dir: Path) -> None:
    _new_cluster("one")
    os.chmod(paths.user_ca_dir() / "ca-key.pem", 0o640)
    with pytest.raises(DaskhpcError, match=r"ca-key\.pem is accessible to other users.*"
                                           r"remove .*/ca \(with no cluster of yours running\)"):
        _new_cluster("two")


def test_a_cluster_in_a_job_gets_certificates_that_end_an_hour_after_it(
    state_dir: Path
) -> None:
    job_end = time.time() + 4 * 3600
    tls = _new_cluster("in-a-job", job_end)
    expires = not_valid_after(tls.cert("scheduler")[0])
    assert expires is not None
    expected = datetime.datetime.fromtimestamp(job_end + 3600, datetime.timezone.utc)
    assert abs(expires - expected) < datetime.timedelta(seconds=2)
    outside = _new_cluster("outside-a-job")
    outside_expires = not_valid_after(outside.cert("worker")[0])
    assert outside_expires is not None
    assert abs(outside_expires - (now() + user.CLUSTER_VALIDITY)) < datetime.timedelta(minutes=1)


def _client_expiring_in(delta: datetime.timedelta) -> Path:
    """The user's client certificate as it is once it got close to its end: issued by their
    CA with the material API, named by current-tls."""
    authority = load_authority(paths.user_ca_dir())
    assert authority is not None
    directory = paths.client_tls_dir() / "expiring"
    issue(authority, directory, ("client",), now() + delta, "client")
    current_tls.point_at(directory)
    return directory


def test_an_expiring_client_certificate_is_renewed_by_the_next_start(state_dir: Path) -> None:
    first = _new_cluster("first")
    expiring = _client_expiring_in(datetime.timedelta(hours=2))

    second = _new_cluster("second")

    renewed = _client()
    assert renewed.directory != expiring and not expiring.exists()  # swapped, old one gone
    assert [path.name for path in paths.client_tls_dir().iterdir()] == [renewed.directory.name]
    assert renewed.cert("client")[1].read_bytes() != b""
    expires = not_valid_after(renewed.cert("client")[0])
    assert expires is not None and expires > now() + user.CLIENT_VALIDITY - DAY
    for cluster in (first, second):  # same CA: the cluster that ran on keeps accepting it
        _handshake(server=cluster, client=renewed)


def test_a_client_certificate_that_outlives_the_new_cluster_is_kept(state_dir: Path) -> None:
    _new_cluster("first")
    lasting = _client_expiring_in(datetime.timedelta(days=3))
    _new_cluster("in-a-short-job", time.time() + 3600)
    assert _client().directory == lasting


def _spec_running(cluster_id: str) -> None:
    """A cluster recorded as running (what dask-cluster-status and a new start see)."""
    cluster_dir = paths.clusters_dir() / cluster_id
    ClusterSpec(
        cluster_id=cluster_id, cluster_dir=str(cluster_dir), created=time.time(),
        launcher="local", protocol="tls", scheduler_host="127.0.0.1", scheduler_port=1,
        dashboard_port=2, scheduler_file=str(cluster_dir / "scheduler.json"),
        nodes=(NodeSpec("vm", 1, 1, 0),), python="python", pythonpath="",
        tls_dir=str(cluster_dir / "tls"),
    ).write()


def _ca_ending_in(delta: datetime.timedelta) -> bytes:
    authority = new_authority("daskhpc CA near its end", now() + delta)
    save_authority(authority, paths.user_ca_dir())
    return authority.cert_pem()


def test_a_ca_near_its_end_is_renewed_only_when_no_cluster_trusts_it(state_dir: Path) -> None:
    _new_cluster("first")
    _spec_running("first")
    old = _ca_ending_in(datetime.timedelta(days=5))

    # A cluster runs on the old CA: it is kept, the new cluster's certificates end with it.
    capped = _new_cluster("second")
    assert (paths.user_ca_dir() / "ca.pem").read_bytes() == old
    capped_end = not_valid_after(capped.cert("scheduler")[0])
    assert capped_end is not None and capped_end <= now() + datetime.timedelta(days=5)

    ClusterState(paths.clusters_dir() / "first").mark_stopped()
    fresh = _new_cluster("third")  # none runs: a new CA, and a client identity of it
    new = (paths.user_ca_dir() / "ca.pem").read_bytes()
    assert new != old
    assert fresh.ca_file.read_bytes() == new == _client().ca_file.read_bytes()
    ca_end = load_authority(paths.user_ca_dir())
    assert ca_end is not None and ca_end.not_after > now() + user.CA_VALIDITY - DAY
    _handshake(server=fresh, client=_client())
    with pytest.raises((ssl.SSLError, OSError)):
        _handshake(server=capped, client=_client())


def test_a_ca_in_its_last_hour_is_renewed_even_with_clusters_running(state_dir: Path) -> None:
    _new_cluster("first")
    _spec_running("first")
    old = _ca_ending_in(datetime.timedelta(minutes=30))
    _new_cluster("second")
    assert (paths.user_ca_dir() / "ca.pem").read_bytes() != old


def test_the_link_names_a_placeholder_until_the_first_cluster_then_the_client(
    state_dir: Path
) -> None:
    link = paths.current_tls_link()
    current_tls.ensure_current()  # what the installer does: a placeholder before any cluster
    placeholder = link.resolve()
    assert placeholder == paths.placeholder_tls_dir().resolve()
    assert load_tls(placeholder, "client") == TLSFiles(placeholder)  # valid, private files

    _new_cluster("first")
    client = link.resolve()
    assert client.parent == paths.client_tls_dir().resolve()
    current_tls.ensure_current()
    _new_cluster("second")
    assert link.resolve() == client  # it no longer moves from cluster to cluster

    shutil.rmtree(paths.client_tls_dir())  # its files deleted by hand: the link dangles
    current_tls.ensure_current()
    assert link.resolve() == placeholder
    _new_cluster("third")
    assert link.resolve().parent == paths.client_tls_dir().resolve()


def test_a_new_start_takes_over_from_the_old_layout(state_dir: Path) -> None:
    """State of a release with one CA per cluster: current-tls into a cluster's own directory
    (that CA's key was never written), no user CA. The next start makes the user's CA and
    moves the link to the user's client identity; the old cluster's files stay untouched."""
    old_dir = paths.clusters_dir() / "old" / "tls"
    old = create_standalone_tls(old_dir)
    current_tls.point_at(old_dir)
    before = {path.name: path.read_bytes() for path in old_dir.iterdir()}

    new = _new_cluster("new")

    client = _client()
    assert client.directory.parent == paths.client_tls_dir().resolve()
    assert {path.name: path.read_bytes() for path in old_dir.iterdir()} == before
    _handshake(server=new, client=client)
    _handshake(server=old, client=old)  # the old cluster's own files still reach it
