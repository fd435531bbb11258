"""What the checks look at, gathered once: the options, the allocation, the launcher and every
node's probe report. Errors on the way are kept for the checks to report, not raised."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from daskhpc.cluster.allocation import Allocation, detect
from daskhpc.cluster.launchers import choose, get_launcher
from daskhpc.cluster.launchers.base import Launcher
from daskhpc.cluster.walltime import with_job_end
from daskhpc.doctor.probing import NodeReport, probe_nodes, reaching_spec
from daskhpc.errors import DaskhpcError
from daskhpc.options import StartOptions


@dataclass
class Context:
    args: StartOptions  # what the start to check is asked
    environ: Mapping[str, str]
    allocation: Optional[Allocation] = None
    allocation_error: Optional[str] = None
    launcher_name: str = ""
    launcher_why: str = ""
    launcher: Optional[Launcher] = None
    launcher_error: Optional[str] = None
    reports: dict[str, NodeReport] = field(default_factory=dict)
    targets: dict[str, int] = field(default_factory=dict)  # listening address -> port

    @property
    def hosts(self) -> list[str]:
        return [node.host for node in self.allocation.nodes] if self.allocation else []

    @property
    def remote_hosts(self) -> list[str]:
        if self.launcher is None:
            return []
        return [node.host for node in self.launcher.spec.nodes if not node.local]

    def facts(self) -> dict[str, dict[str, Any]]:
        """host -> the probe's report, for the nodes where the probe ran through."""
        return {host: report.facts for host, report in self.reports.items()
                if report.facts is not None}


def gather(args: StartOptions, environ: Mapping[str, str]) -> Context:
    context = Context(args, environ)
    try:
        context.allocation = with_job_end(detect(environ, args.hostfile, args.hosts), environ)
    except DaskhpcError as error:
        context.allocation_error = str(error)
        return context
    try:
        context.launcher_name, context.launcher_why = choose(args.launcher, context.allocation,
                                                             environ)
        spec = reaching_spec(context.allocation, context.launcher_name)
        context.launcher = get_launcher(context.launcher_name, spec)
    except DaskhpcError as error:
        context.launcher_error = str(error)
        return context
    context.reports, context.targets = probe_nodes(context.launcher, args.local_directory)
    return context
