"""The per-cluster CA and certificates: private on disk, and trusted by their own cluster only."""

from __future__ import annotations

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
from daskhpc.cluster.tls.material import ClusterTLS, create_cluster_tls, load_cluster_tls
from daskhpc.errors import DaskhpcError


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


def test_directory_and_every_file_are_private_even_with_umask_0(
    tmp_path: Path, permissive_umask: None
) -> None:
    tls = create_cluster_tls(tmp_path / "cluster" / "tls")

    assert _mode(tls.directory) == 0o700
    files = sorted(tls.directory.iterdir())
    assert [path.name for path in files] == [
        "ca.pem", "client-key.pem", "client.pem", "scheduler-key.pem", "scheduler.pem",
        "worker-key.pem", "worker.pem",
    ]
    assert {path.name: _mode(path) for path in files} == {path.name: 0o600 for path in files}


def test_command_line_names_paths_and_no_key_material(tmp_path: Path) -> None:
    tls = create_cluster_tls(tmp_path / "tls")
    cert_path, key_path = tls.cert("worker")

    arguments = tls.cli_args("worker")

    assert arguments == [
        "--tls-ca-file", str(tls.ca_file), "--tls-cert", str(cert_path), "--tls-key", str(key_path)
    ]
    assert not any("PRIVATE KEY" in argument for argument in arguments)


def test_ca_private_key_is_never_written(tmp_path: Path) -> None:
    tls = create_cluster_tls(tmp_path / "tls")
    holders = [path.name for path in tls.directory.iterdir() if "PRIVATE KEY" in path.read_text()]
    assert sorted(holders) == ["client-key.pem", "scheduler-key.pem", "worker-key.pem"]


def _handshake(server: ClusterTLS, client: ClusterTLS) -> None:
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


def test_certificates_verify_against_their_own_cluster_ca(tmp_path: Path) -> None:
    tls = create_cluster_tls(tmp_path / "tls")
    _handshake(server=tls, client=tls)


def test_certificates_of_another_cluster_are_refused_both_ways(tmp_path: Path) -> None:
    ours = create_cluster_tls(tmp_path / "ours")
    theirs = create_cluster_tls(tmp_path / "theirs")
    with pytest.raises((ssl.SSLError, OSError)):
        _handshake(server=ours, client=theirs)
    with pytest.raises((ssl.SSLError, OSError)):
        _handshake(server=theirs, client=ours)


def test_security_object_requires_encryption(tmp_path: Path) -> None:
    tls = create_cluster_tls(tmp_path / "tls")
    client_security = tls.security()
    assert client_security.require_encryption
    assert client_security.tls_client_cert == str(tls.cert("client")[0])
    assert client_security.tls_ca_file == str(tls.ca_file)


def test_load_refuses_missing_and_exposed_files(tmp_path: Path) -> None:
    tls = create_cluster_tls(tmp_path / "tls")
    assert load_cluster_tls(tls.directory) == tls

    os.chmod(tls.cert("worker")[1], 0o644)
    with pytest.raises(DaskhpcError, match="accessible to other users"):
        load_cluster_tls(tls.directory)

    tls.cert("worker")[1].unlink()
    with pytest.raises(DaskhpcError, match=r"worker-key\.pem"):
        load_cluster_tls(tls.directory)


def _cluster(cluster_id: str) -> ClusterTLS:
    """A cluster's state as start-dask-cluster leaves it: spec.json naming its TLS directory."""
    cluster_dir = paths.clusters_dir() / cluster_id
    tls = create_cluster_tls(cluster_dir / "tls")
    ClusterSpec(
        cluster_id=cluster_id, cluster_dir=str(cluster_dir), created=time.time(), launcher="local",
        protocol="tls", scheduler_host="127.0.0.1", scheduler_port=1, dashboard_port=2,
        scheduler_file=str(cluster_dir / "scheduler.json"), nodes=(NodeSpec("vm", 1, 1, 0),),
        python="python", pythonpath="", tls_dir=str(tls.directory),
    ).write()
    return tls


def test_current_pointer_follows_the_latest_cluster_and_never_dangles(state_dir: Path) -> None:
    link = paths.current_tls_link()
    current_tls.ensure_current()  # what the installer does: a placeholder before any cluster
    placeholder = link.resolve()
    assert placeholder == paths.placeholder_tls_dir().resolve()
    assert load_cluster_tls(placeholder) == ClusterTLS(placeholder)  # valid, private files

    first = _cluster("first")
    current_tls.set_current(first)
    second = _cluster("second")
    current_tls.set_current(second)
    assert link.resolve() == second.directory.resolve()
    current_tls.ensure_current()
    assert link.resolve() == second.directory.resolve()  # a live link is left alone

    current_tls.clear_current(first)  # not the one the link names: nothing changes
    assert link.resolve() == second.directory.resolve()
    current_tls.clear_current(second)  # the first cluster still runs: it becomes current
    assert link.resolve() == first.directory.resolve()
    ClusterState(paths.clusters_dir() / "second").mark_stopped()
    current_tls.clear_current(first)
    assert link.resolve() == placeholder

    current_tls.set_current(second)
    shutil.rmtree(second.directory)  # its files deleted by hand: the link dangles
    current_tls.ensure_current()
    assert link.resolve() == placeholder
