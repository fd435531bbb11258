"""Network: the address the scheduler would listen on and why; every node opens a TCP connection
back to a socket listening on it; --interface exists on every node; which nodes lack ib0 when
the automatic choice falls back from InfiniBand."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Optional, Sequence

import psutil

from daskhpc.cluster.network import INFINIBAND, scheduler_address
from daskhpc.doctor.context import Context
from daskhpc.doctor.findings import Finding, ok, problem, warning
from daskhpc.errors import DaskhpcError

CHECK = "network"


def _local_interface(address: str) -> str:
    for name, addresses in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == address for a in addresses):
            return name
    return "?"


def _names(facts: dict[str, Any]) -> set[str]:
    return {name for name, addresses in facts["interfaces"].items() if addresses}


def _why(context: Context, address: str) -> str:
    if context.args.interface:
        return f"--interface {context.args.interface}"
    if ipaddress.ip_address(address).is_loopback:
        return "loopback: every worker is on this node"
    if _local_interface(address) == INFINIBAND:
        return f"{INFINIBAND} on every node"
    return f"{_local_interface(address)}, the route to {context.remote_hosts[0]}"


def _choose(context: Context, facts: dict[str, dict[str, Any]]) -> str:
    """The scheduler's address, by the rule start uses, with the nodes' interfaces as found."""

    def has_infiniband(hosts: Sequence[str]) -> bool:
        return all(host in facts and INFINIBAND in _names(facts[host]) for host in hosts)

    return scheduler_address(context.args.interface, context.remote_hosts, has_infiniband)


def _infiniband(context: Context, facts: dict[str, dict[str, Any]],
                address: str) -> list[Finding]:
    if context.args.interface or not context.remote_hosts:
        return []
    here = INFINIBAND in psutil.net_if_addrs()
    lacking = [host for host in context.remote_hosts
               if host in facts and INFINIBAND not in _names(facts[host])]
    fallback = f"{address} ({_local_interface(address)})"
    if here and lacking:
        return [warning(CHECK, f"no {INFINIBAND} there, while this node has one: the cluster "
                               f"falls back to {fallback}",
                        f"leave those nodes out to use {INFINIBAND}, or --interface "
                        f"{_local_interface(address)} to choose the fallback yourself", lacking)]
    if not here and context.remote_hosts and not lacking and all(h in facts for h in
                                                                 context.remote_hosts):
        return [warning(CHECK, f"every other node has {INFINIBAND} but this one does not: the "
                               f"scheduler listens on {fallback}",
                        "run start-dask-cluster on one of the allocated nodes (inside the job)")]
    return []


def _reachable_elsewhere(context: Context, results: dict[str, Optional[str]]) -> list[str]:
    """Interfaces of this node that the node did reach."""
    found = []
    for target, error in results.items():
        address = target.rsplit(":", 1)[0]
        if error is None and not ipaddress.ip_address(address).is_loopback:
            found.append(_local_interface(address))
    return found


def check(context: Context) -> list[Finding]:
    facts = context.facts()
    if context.launcher is None or not facts:
        return []
    found: list[Finding] = []
    interface = context.args.interface
    if interface:
        for host, node in facts.items():
            if interface not in _names(node):
                common = set.intersection(*(_names(n) for n in facts.values())) - {"lo"}
                fix = (f"--interface {' or '.join(sorted(common))} (on every node)" if common
                       else "leave out --interface")
                found.append(problem(CHECK, f"no interface {interface} with an IPv4 address "
                                            f"(it has {', '.join(sorted(_names(node)))})",
                                     fix, [host]))
    try:
        address = _choose(context, facts)
    except DaskhpcError as error:
        return [*found, problem(CHECK, str(error), "")]
    target = f"{address}:{context.targets.get(address)}"
    lacking = {host for finding in found for host in finding.nodes}
    for host, node in facts.items():
        error = node["connect"].get(target, "no listener was opened on that address")
        if error is None or host in lacking:  # no such interface there: said already
            continue
        others = _reachable_elsewhere(context, node["connect"])
        fix = (f"--interface {others[0]} (that node reaches it)" if others else
               f"have the firewall (on those nodes or between them) let TCP from the nodes "
               f"reach {address} on any port: the scheduler's port is chosen at start")
        found.append(problem(CHECK, f"cannot open a TCP connection back to the scheduler's "
                                    f"address {target} ({error})", fix, [host]))
    found += _infiniband(context, facts, address)
    if not any(f.status == "problem" for f in found):
        found.insert(0, ok(CHECK, f"the scheduler would listen on {address} "
                                  f"({_why(context, address)}); every node connects to it"))
    return found
