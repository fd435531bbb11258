"""Shared environment: the environment's Python runs on every node at the same path with the
same daskhpc, and every node sees the same state directory (a token written here is read
there)."""

from __future__ import annotations

import daskhpc
from daskhpc import paths
from daskhpc.doctor.checks.remote import reached
from daskhpc.doctor.context import Context
from daskhpc.doctor.findings import Finding, ok, problem

CHECK = "environment"
SHARED_FIX = ("install the environment once on a filesystem every node mounts at the same path "
              "(your home or project space: setup-dask.sh --prefix /shared/path)")


def check(context: Context) -> list[Finding]:
    if context.launcher is None:
        return []
    python = context.launcher.spec.python
    found = []
    for host, report in context.reports.items():
        facts = report.facts
        if facts is None:
            if not reached(report, python):
                continue  # the launcher did not get there: remote start says why
            if report.returncode == 127 or "Traceback" not in report.stderr:
                found.append(problem(CHECK, f"{python} does not exist there", SHARED_FIX, [host]))
            else:
                found.append(problem(CHECK, f"the environment's Python fails there "
                                     f"({report.last_error})",
                                     f"run `{python} -c 'import daskhpc'` there", [host]))
            continue
        if facts["version"] != daskhpc.__version__:
            found.append(problem(CHECK, f"daskhpc {facts['version']} there, "
                                 f"{daskhpc.__version__} here", SHARED_FIX, [host]))
        if facts["token"] is not None:
            found.append(problem(
                CHECK, f"the state directory {paths.state_dir()} is not shared with this node "
                       f"(a file written here: {facts['token']} there)",
                "set DASKHPC_STATE_DIR to a directory on a filesystem every node shares",
                [host]))
    if found:
        return found
    return [ok(CHECK, f"{python} with daskhpc {daskhpc.__version__} runs on every node; "
                      f"all share {paths.state_dir()}")]
