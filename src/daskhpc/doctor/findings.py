"""A finding is one line of the doctor's report: status, check, nodes, what was found, the fix.

Findings that say the same thing about several nodes are merged into one line naming the nodes
as a host list (node[02-17]), so a hundred nodes with one missing key still give one line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Sequence

import hostlist

OK, WARNING, PROBLEM = "ok", "warning", "problem"


@dataclass(frozen=True)
class Finding:
    check: str  # the check family, e.g. "remote start"
    status: str  # OK, WARNING or PROBLEM
    found: str  # what was found, without the node names
    fix: str = ""  # the exact fix; empty for OK
    nodes: tuple[str, ...] = ()  # the nodes it applies to; empty: this node / the whole cluster


def ok(check: str, found: str) -> Finding:
    return Finding(check, OK, found)


def warning(check: str, found: str, fix: str, nodes: Sequence[str] = ()) -> Finding:
    return Finding(check, WARNING, found, fix, tuple(nodes))


def problem(check: str, found: str, fix: str, nodes: Sequence[str] = ()) -> Finding:
    return Finding(check, PROBLEM, found, fix, tuple(nodes))


def merge(findings: Sequence[Finding]) -> list[Finding]:
    """Findings equal but for their nodes become one, at the place of the first."""
    merged: dict[tuple[str, str, str, str], Finding] = {}
    for finding in findings:
        key = (finding.check, finding.status, finding.found, finding.fix)
        if key in merged and finding.nodes and merged[key].nodes:
            nodes = merged[key].nodes + tuple(n for n in finding.nodes
                                              if n not in merged[key].nodes)
            merged[key] = replace(merged[key], nodes=nodes)
        else:
            merged.setdefault(key, finding)
    return list(merged.values())


def node_list(nodes: Sequence[str]) -> str:
    try:
        return str(hostlist.collect_hostlist(list(nodes)))
    except hostlist.BadHostlist:
        return ",".join(nodes)


def line(finding: Finding) -> str:
    where = f"{node_list(finding.nodes)}: " if finding.nodes else ""
    fix = f"  fix: {finding.fix}" if finding.fix else ""
    return f"{finding.status:<8} {finding.check + ':':<18} {where}{finding.found}{fix}"


def summary(findings: Sequence[Finding]) -> str:
    problems = sum(f.status == PROBLEM for f in findings)
    warnings = sum(f.status == WARNING for f in findings)
    if not problems and not warnings:
        return "no problem found: start-dask-cluster should start with these options"
    return f"{problems} problem(s), {warnings} warning(s)"


def as_json(findings: Sequence[Finding]) -> str:
    return json.dumps({
        "problems": sum(f.status == PROBLEM for f in findings),
        "warnings": sum(f.status == WARNING for f in findings),
        "checks": [{**asdict(f), "nodes": list(f.nodes)} for f in findings],
    }, indent=1)
