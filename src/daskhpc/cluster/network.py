"""Addresses and ports: which address the scheduler listens on, which ports are free, and which
local address routes to a host. psutil is imported only where interfaces are listed: node agents
use route_source at start."""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable, Sequence

from daskhpc.errors import DaskhpcError

INFINIBAND = "ib0"


def free_port(host: str) -> int:
    """A port nobody listens on now (the kernel's choice), so clusters never collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def interface_address(name: str) -> str:
    """The IPv4 address of a local interface, or a clear error listing the ones there are."""
    import psutil

    interfaces = psutil.net_if_addrs()
    for address in interfaces.get(name, []):
        if address.family == socket.AF_INET:
            return str(address.address)
    known = ", ".join(sorted(n for n, a in interfaces.items()
                             if any(x.family == socket.AF_INET for x in a)))
    raise DaskhpcError(f"interface {name!r} has no IPv4 address here; interfaces: {known}")


def resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        raise DaskhpcError(
            f"unknown host {host!r}: it does not resolve; check the host list"
        ) from None


def local_names() -> set[str]:
    hostname = socket.gethostname()
    return {hostname, hostname.split(".")[0], socket.getfqdn(), "localhost"}


def is_this_machine(host: str) -> bool:
    if host in local_names():
        return True
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        return False
    return address.is_loopback or str(address) in _local_addresses()


def _local_addresses() -> set[str]:
    import psutil

    return {str(a.address) for addrs in psutil.net_if_addrs().values() for a in addrs
            if a.family == socket.AF_INET}


def route_source(destination: str, port: int = 9) -> str:
    """The local address the kernel would use to reach destination (UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((destination, port))
        except OSError as error:
            raise DaskhpcError(f"no route to {destination} ({error.strerror})") from None
        return str(probe.getsockname()[0])


def scheduler_address(interface: str | None, remote_hosts: Sequence[str],
                      has_infiniband: Callable[[Sequence[str]], bool]) -> str:
    """Where the scheduler listens.

    --interface wins. Otherwise: loopback when every worker is on this machine; ib0 when this
    node and every remote node have it (`has_infiniband` asks them); else the address this node
    uses to reach the first remote node (the route the nodes share).
    """
    if interface:
        return interface_address(interface)
    if not remote_hosts:
        return "127.0.0.1"
    import psutil

    addresses = [resolve(host) for host in remote_hosts]
    if INFINIBAND in psutil.net_if_addrs() and has_infiniband(remote_hosts):
        return interface_address(INFINIBAND)
    return route_source(addresses[0])
