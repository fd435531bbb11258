"""Remote start: the launcher reaches every node without a prompt (ssh in BatchMode), or srun
starts a step in this job with --overlap, or mpirun starts a process on each node."""

from __future__ import annotations

from daskhpc.doctor.context import Context
from daskhpc.doctor.findings import Finding, ok, problem
from daskhpc.doctor.probing import NodeReport

CHECK = "remote start"
SSH_FAILED = 255  # ssh's own exit code; the remote command's code otherwise

# (what ssh says, what it means, the fix)
_SSH_FAILURES = [
    ("Permission denied", "ssh does not accept your key ({error})",
     "ssh-keygen -t ed25519 if ~/.ssh has no key, then ssh-copy-id to each node named (where "
     "the nodes share your home: append ~/.ssh/id_ed25519.pub to ~/.ssh/authorized_keys, "
     "mode 600)"),
    ("Host key verification failed", "this node does not know the node's host key ({error})",
     "compare the fingerprint with your site's documentation, then ssh-keyscan each node named "
     ">> ~/.ssh/known_hosts (or log in once with ssh and answer yes)"),
    ("Could not resolve hostname", "ssh cannot resolve the name ({error})",
     "correct the host list, or use the names the batch system gives"),
    ("Connection refused", "no ssh server answers ({error})",
     "use the batch system's launcher instead (--launcher srun or --launcher mpi)"),
    ("timed out", "no ssh server answers ({error})",
     "use the batch system's launcher instead (--launcher srun or --launcher mpi)"),
    ("No route to host", "no ssh server answers ({error})",
     "use the batch system's launcher instead (--launcher srun or --launcher mpi)"),
]


def reached(report: NodeReport, python: str) -> bool:
    """The launcher got a command running on the node (whatever became of the probe)."""
    text = report.stderr
    return (report.facts is not None or report.returncode == 127
            or "Traceback (most recent call last)" in text
            or (python in text and ("No such file" in text or "not found" in text)))


def _ssh(report: NodeReport) -> Finding:
    error = report.last_error
    for marker, found, fix in _SSH_FAILURES:
        if marker in report.stderr:
            return problem(CHECK, found.format(error=error), fix, [report.host])
    return problem(CHECK, f"ssh failed ({error})",
                   "run `ssh NODE true` for each node named and fix what it says", [report.host])


def _launcher_failure(context: Context, report: NodeReport) -> Finding:
    error = report.last_error
    if context.launcher_name == "ssh" and report.returncode == SSH_FAILED:
        return _ssh(report)
    if report.returncode is None:
        return problem(CHECK, f"{context.launcher_name}: {error}",
                       "check that the node is up and that the job still runs", [report.host])
    if context.launcher_name == "srun":
        if "--overlap" in report.stderr:
            return problem(CHECK, f"this srun does not know --overlap ({error}); Slurm < 20.11",
                           "use --launcher ssh or --launcher mpi", [report.host])
        return problem(CHECK, f"srun could not start a step in this job ({error})",
                       "run inside the job (salloc/sbatch) while it runs: squeue -j "
                       "$SLURM_JOB_ID", [report.host])
    return problem(CHECK, f"{context.launcher_name} could not start a process there ({error})",
                   "load the site's MPI module, or use --launcher ssh or srun", [report.host])


def check(context: Context) -> list[Finding]:
    if context.allocation is None:
        return []
    name = context.launcher_name
    if context.launcher is None:
        return [problem(CHECK, context.launcher_error or "no launcher", "", context.hosts)]
    spec = context.launcher.spec
    if name == "local" and context.remote_hosts:
        return [problem(CHECK, "--launcher local runs on this machine only",
                        "use --launcher ssh (or srun, mpi)", context.remote_hosts)]
    failures = [_launcher_failure(context, report) for report in context.reports.values()
                if not reached(report, spec.python)]
    if failures:
        return failures
    how = {"ssh": "ssh in BatchMode reaches every node without a prompt",
           "srun": "srun starts a step with --overlap on every node",
           "mpi": "mpirun starts a process on every node",
           "local": "nothing to reach"}.get(name, f"{name} reaches every node")
    return [ok(CHECK, f"launcher {name} ({context.launcher_why}): {how}")]
