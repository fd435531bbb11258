"""Scratch: the workers' local directory is node-local (not NFS, Lustre, GPFS, BeeGFS, CephFS or
FUSE, per the node's mount table), can be created and has room, on every node."""

from __future__ import annotations

from daskhpc.cluster.plan import format_bytes
from daskhpc.doctor.context import Context
from daskhpc.doctor.findings import Finding, ok, problem, warning

CHECK = "scratch"
LOW_SPACE = 2**30  # bytes free below which spilling workers soon fill the disk
LOCAL_FIX = ("--local-directory DIR on a node-local disk that exists on every node, e.g. /tmp or "
             "$TMPDIR (df -T DIR shows its type)")


def check(context: Context) -> list[Finding]:
    found: list[Finding] = []
    kinds, free = set(), []
    for host, facts in context.facts().items():
        scratch = facts["scratch"]
        path, mount = scratch["path"], scratch["mount"]
        if scratch["problem"]:
            found.append(problem(CHECK, f"worker directories cannot be made: {scratch['problem']}",
                                 LOCAL_FIX, [host]))
            continue
        if mount and mount["shared"]:
            found.append(problem(
                CHECK, f"{path} is on {mount['fstype']} ({mount['source']} on {mount['point']}), "
                       "shared between nodes: worker directories there make starts slow and fail "
                       "with 'Could not acquire workspace lock'", LOCAL_FIX, [host]))
            continue
        if scratch["free"] is not None and scratch["free"] < LOW_SPACE:
            found.append(warning(CHECK, f"only {format_bytes(scratch['free'])} free in {path}",
                                 LOCAL_FIX, [host]))
        kinds.add(f"{path} on {mount['fstype'] if mount else 'an unknown filesystem'}")
        if scratch["free"] is not None:
            free.append(scratch["free"])
    if not found and kinds:
        room = f", at least {format_bytes(min(free))} free" if free else ""
        found.append(ok(CHECK, f"{'; '.join(sorted(kinds))} (node-local), writable{room}"))
    return found
