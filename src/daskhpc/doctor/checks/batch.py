"""Batch system: which allocation was found and from what, every node name resolves, the job
has time left, and --jobs has a batch system to submit to."""

from __future__ import annotations

import time

from daskhpc.cluster import network, plan
from daskhpc.cluster.head import jobqueue
from daskhpc.doctor.context import Context
from daskhpc.doctor.findings import Finding, node_list, ok, problem
from daskhpc.errors import DaskhpcError

CHECK = "batch system"
NAMES = "node names"
_NO_JOB = ("SLURM_JOB_NODELIST", "PBS_NODEFILE", "LSB_DJOB_HOSTFILE", "LSB_HOSTS", "PE_HOSTFILE")


def source(context: Context) -> str:
    """Where the node list came from, as the user would look it up."""
    assert context.allocation is not None
    environ, args, job = context.environ, context.args, context.allocation.job_id
    variable = {"slurm": "SLURM_JOB_NODELIST" if environ.get("SLURM_JOB_NODELIST")
                else "SLURM_NODELIST",
                "pbs": "PBS_NODEFILE", "sge": "PE_HOSTFILE",
                "lsf": "LSB_DJOB_HOSTFILE" if environ.get("LSB_DJOB_HOSTFILE") else "LSB_HOSTS",
                }.get(context.allocation.kind)
    if variable:
        return f"{context.allocation.kind} job {job or '(no id)'}, from {variable}"
    if context.allocation.kind == "hostfile":
        return f"--hostfile {args.hostfile}"
    if context.allocation.kind == "hosts":
        return f"--hosts {args.hosts}"
    return f"no batch job ({', '.join(_NO_JOB)} unset): this machine alone"


def check(context: Context) -> list[Finding]:
    if context.allocation is None:
        return [problem(CHECK, context.allocation_error or "no allocation", "")]
    hosts = context.hosts
    found = [ok(CHECK, f"{source(context)}: {len(hosts)} node(s) {node_list(hosts)}")]
    try:
        plan.worker_end_time(context.allocation, time.time(), context.args.lifetime_margin)
        jobqueue.check(context.args.jobs, context.environ)
    except DaskhpcError as error:
        found.append(problem(CHECK, str(error), ""))
    unknown = []
    for host in hosts:
        try:
            network.resolve(host)
        except DaskhpcError:
            unknown.append(host)
    if unknown:
        found.append(problem(NAMES, "does not resolve on this node",
                             "correct the name in the host list, or have it added to DNS or "
                             "/etc/hosts (admins)", unknown))
    else:
        found.append(ok(NAMES, "every node name resolves"))
    return found
