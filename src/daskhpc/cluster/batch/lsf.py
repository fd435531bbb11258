"""LSF: nodes from LSB_DJOB_HOSTFILE (one line per slot) or LSB_HOSTS; the end from
`bjobs -o time_left`, when it is a run limit ("L"; an "E" estimate kills nothing)."""

from __future__ import annotations

import re
from typing import Callable, Mapping, Optional

from daskhpc.cluster.batch.base import (
    Allocation,
    BatchSystem,
    Runner,
    from_counted,
    from_slot_lines,
)


class Lsf(BatchSystem):
    def allocation(self, environ: Mapping[str, str]) -> Allocation:
        job = environ.get("LSB_JOBID")
        if environ.get("LSB_DJOB_HOSTFILE"):
            return from_slot_lines(self.name, "LSB_DJOB_HOSTFILE",
                                   environ["LSB_DJOB_HOSTFILE"], job)
        return from_counted(self.name, "LSB_HOSTS", environ["LSB_HOSTS"].split(), job)

    def end_time(self, environ: Mapping[str, str], run: Runner,
                 now: Callable[[], float]) -> Optional[float]:
        job = environ.get("LSB_JOBID", "").strip()
        if not job:
            return None
        report = run(["bjobs", "-noheader", "-o", "time_left", job])
        # hours:minutes[:seconds] (seconds with LSB_HMS_TIME_FORMAT) and L for a run limit
        match = re.fullmatch(r"(\d+):(\d+)(?::(\d+))?\s*L", (report or "").strip())
        if match is None:
            return None
        hours, minutes, seconds = (int(group or 0) for group in match.groups())
        return now() + (hours * 60 + minutes) * 60 + seconds


SYSTEM = Lsf("lsf", 30, "LSB_JOBID", ("LSB_DJOB_HOSTFILE", "LSB_HOSTS"),
             "dask_jobqueue.lsf:LSFJob", "bsub")
