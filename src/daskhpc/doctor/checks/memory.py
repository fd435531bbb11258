"""Memory: what start would give each node's workers against what the node allows: its cgroup
limit (v1 or v2, the job's own included) and its physical memory."""

from __future__ import annotations

from typing import Optional

from daskhpc.cluster.allocation import Node
from daskhpc.cluster.plan import format_bytes, node_spec, parse_memory
from daskhpc.cluster.spec import NodeSpec
from daskhpc.doctor.context import Context
from daskhpc.doctor.findings import Finding, ok, problem
from daskhpc.errors import DaskhpcError

CHECK = "memory"


def planned(context: Context, memory_limit: Optional[int]) -> dict[str, NodeSpec]:
    """host -> what start would plan for it (raises as start would)."""
    assert context.allocation is not None and context.launcher is not None
    local = {node.host: node.local for node in context.launcher.spec.nodes}
    return {node.host: node_spec(node, context.args, memory_limit, local[node.host])
            for node in context.allocation.nodes}


def allowed(facts: dict[str, object]) -> tuple[int, str]:
    memory = facts["memory"]
    assert isinstance(memory, dict)
    cgroup, physical = memory["cgroup"], memory["physical"]
    if cgroup is not None and cgroup < physical:
        return int(cgroup), "its cgroup limit"
    return int(physical), "its memory"


def _node(node: Node, spec: NodeSpec, facts: dict[str, object]) -> Optional[Finding]:
    limit, what = allowed(facts)
    total = spec.memory_limit * spec.workers
    if total <= limit:
        return None
    per_worker = limit * 9 // 10 // spec.workers // 2**20
    return problem(CHECK, f"{spec.workers} worker(s) x {format_bytes(spec.memory_limit)} = "
                          f"{format_bytes(total)} planned, but the node allows "
                          f"{format_bytes(limit)} ({what}): the kernel kills workers before "
                          "Dask can spill", f"--memory-limit {per_worker}MiB", [node.host])


def check(context: Context) -> list[Finding]:
    if context.allocation is None or context.launcher is None:
        return []
    try:
        specs = planned(context, parse_memory(context.args.memory_limit))
    except DaskhpcError as error:
        return [problem(CHECK, str(error), "")]
    facts = context.facts()
    found = [finding for node in context.allocation.nodes if node.host in facts
             and (finding := _node(node, specs[node.host], facts[node.host]))]
    if found or not facts:
        return found
    sizes = sorted({format_bytes(s.memory_limit * s.workers) for s in specs.values()})
    return [ok(CHECK, f"{' / '.join(sizes)} per node for the workers fits within every node's "
                      "cgroup limit and memory")]
