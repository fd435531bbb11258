"""PBS (OpenPBS, PBS Pro, Torque): nodes from PBS_NODEFILE (one line per slot); the end is the
job's walltime limit minus the walltime used, from `qstat -f`."""

from __future__ import annotations

import re
from typing import Callable, Mapping, Optional

from daskhpc.cluster.batch.base import (
    Allocation,
    BatchSystem,
    Runner,
    from_slot_lines,
    parse_hms,
)


class Pbs(BatchSystem):
    def allocation(self, environ: Mapping[str, str]) -> Allocation:
        return from_slot_lines(self.name, "PBS_NODEFILE", environ["PBS_NODEFILE"],
                               environ.get("PBS_JOBID"))

    def end_time(self, environ: Mapping[str, str], run: Runner,
                 now: Callable[[], float]) -> Optional[float]:
        job = environ.get("PBS_JOBID", "").strip()
        if not job:
            return None
        report = run(["qstat", "-f", job])
        if report is None:
            return None
        fields = dict(re.findall(r"^\s*([\w.]+)\s*=\s*(.*?)\s*$", report, flags=re.MULTILINE))
        limit = fields.get("Resource_List.walltime")
        if not limit:
            return None
        try:
            left = parse_hms(limit) - parse_hms(fields.get("resources_used.walltime", "0"))
        except ValueError:
            return None
        return now() + max(left, 0.0)

    def takes_jobs_here(self, environ: Mapping[str, str], which: Callable[[str], object]
                        ) -> bool:
        return super().takes_jobs_here(environ, which) and not environ.get("SGE_ROOT")


SYSTEM = Pbs("pbs", 20, "PBS_JOBID", ("PBS_NODEFILE",), "dask_jobqueue.pbs:PBSJob", "qsub")
