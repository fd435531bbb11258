"""Scheduler file: it can be written, and no file is there already (a dead cluster's is stale;
a live cluster's means this start would be refused)."""

from __future__ import annotations

from daskhpc.cluster.commands.start import scheduler_file_in_use
from daskhpc.cluster.plan import scheduler_file
from daskhpc.cluster.state import scheduler_file_field
from daskhpc.doctor.context import Context
from daskhpc.doctor.findings import Finding, ok, problem, warning
from daskhpc.doctor.paths import file_problem

CHECK = "scheduler file"


def check(context: Context) -> list[Finding]:
    path = scheduler_file(context.args.scheduler_file)
    if not path.exists():
        reason = file_problem(path)
        if reason:
            return [problem(CHECK, f"{path} cannot be written: {reason}",
                            "--scheduler-file in a directory of yours that exists, e.g. "
                            "~/dask-scheduler.json")]
        return [ok(CHECK, f"{path} can be written")]
    in_use = scheduler_file_in_use(path)
    if in_use:
        return [warning(CHECK, in_use, "stop-dask-cluster, or --scheduler-file OTHER.json for a "
                                       "second cluster")]
    address = scheduler_file_field(path, "address") or "no address"
    return [warning(CHECK, f"{path} is stale: its scheduler ({address}) is gone; clients reading "
                           "it now wait on a dead address (start-dask-cluster replaces it)",
                    f"nothing before starting; rm {path} if no cluster is coming soon")]
