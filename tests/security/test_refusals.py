"""A TLS cluster talks only to holders of its own certificates."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest
from distributed import Client
from distributed.comm import CommClosedError, connect
from security_helpers import RunningCluster

from daskhpc.cluster.tls.material import create_standalone_tls

# Refusals surface as connection errors once distributed stops retrying: keep that short.
REFUSAL_TIMEOUT = "3s"


def test_client_with_the_cluster_certificates_computes(tls_cluster: RunningCluster) -> None:
    with Client(tls_cluster.address, security=tls_cluster.tls.security(), timeout=30) as client:
        assert client.submit(sum, [1, 2]).result(timeout=60) == 3


def test_client_without_a_certificate_is_refused(tls_cluster: RunningCluster) -> None:
    """Trusting the cluster's CA is not enough: the scheduler demands a certificate it signed.
    (distributed.Security cannot even express this client, so speak its comm layer directly.)"""
    only_ca = ssl.create_default_context(cafile=str(tls_cluster.tls.ca_file))
    only_ca.check_hostname = False

    async def identify() -> object:
        comm = await connect(
            tls_cluster.address, timeout=REFUSAL_TIMEOUT, ssl_context=only_ca
        )
        try:
            await comm.write({"op": "identity"})
            return await comm.read()
        finally:
            await comm.close()

    with pytest.raises((OSError, CommClosedError)):
        asyncio.run(identify())


def test_client_with_another_clusters_certificates_is_refused(
    tls_cluster: RunningCluster, tmp_path: Path
) -> None:
    other = create_standalone_tls(tmp_path / "other-cluster")
    with pytest.raises(OSError):
        Client(tls_cluster.address, security=other.security(), timeout=REFUSAL_TIMEOUT)


def test_plain_tcp_to_the_scheduler_port_fails(tls_cluster: RunningCluster) -> None:
    plain = tls_cluster.address.replace("tls://", "tcp://")
    with pytest.raises(OSError):
        Client(plain, timeout=REFUSAL_TIMEOUT)


def test_plain_bytes_get_no_dask_answer(tls_cluster: RunningCluster) -> None:
    """What a tcp:// client sends first never reaches Dask: the port speaks only TLS."""
    host, port = tls_cluster.address.removeprefix("tls://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"\x00" * 64)  # not a TLS ClientHello
        try:
            answer = connection.recv(4096)
        except ConnectionResetError:
            answer = b""
    # Empty (closed) or a TLS alert record (content type 21); never a Dask message.
    assert answer == b"" or answer[:1] == b"\x15"
