"""Limits: open files. The scheduler holds connections to every worker and each worker may
connect to every other one; a low `ulimit -n` shows up as "Too many open files" at scale."""

from __future__ import annotations

import resource

from daskhpc.doctor.checks.memory import planned
from daskhpc.doctor.context import Context
from daskhpc.doctor.findings import Finding, ok, warning

CHECK = "limits"
SPARE = 256  # files a process needs besides its connections (libraries, logs, spill files)


def _fix(hard: int, needed: int) -> str:
    if hard == resource.RLIM_INFINITY or hard >= needed:
        return f"ulimit -n {needed} before starting (your hard limit allows it)"
    return f"ask the admins to raise the hard open-file limit (now {hard}) to {needed}"


def check(context: Context) -> list[Finding]:
    if context.allocation is None or context.launcher is None:
        return []
    # without a memory limit the plan cannot fail: the count is what start would use
    workers = sum(spec.workers for spec in planned(context, None).values())
    found = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    scheduler_needs = 2 * workers + SPARE
    if soft != resource.RLIM_INFINITY and soft < scheduler_needs:
        found.append(warning(CHECK, f"open-file limit {soft} here, the scheduler needs about "
                                    f"{scheduler_needs} for {workers} workers",
                             _fix(hard, scheduler_needs)))
    worker_needs = workers + SPARE
    for host, facts in context.facts().items():
        node_soft, node_hard = facts["nofile"]
        if node_soft != resource.RLIM_INFINITY and node_soft < worker_needs:
            found.append(warning(CHECK, f"open-file limit {node_soft}, a worker may need about "
                                        f"{worker_needs}", _fix(node_hard,
                                                                worker_needs), [host]))
    return found or [ok(CHECK, f"open-file limits suffice for {workers} workers")]
