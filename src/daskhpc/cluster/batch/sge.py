"""SGE (Son of / Univa Grid Engine): nodes from PE_HOSTFILE (`host slots queue range`); the end
is the job's start (`qstat -s r`) plus its h_rt limit (`qstat -j`)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable, Mapping, Optional

from daskhpc.cluster.batch.base import (
    Allocation,
    BatchSystem,
    Node,
    Runner,
    parse_hms,
    read_lines,
    valid_host,
    whole,
)
from daskhpc.errors import DaskhpcError


class Sge(BatchSystem):
    def allocation(self, environ: Mapping[str, str]) -> Allocation:
        nodes = []
        for line in read_lines("PE_HOSTFILE", Path(environ["PE_HOSTFILE"])):
            fields = line.split()
            if len(fields) < 2 or not valid_host(fields[0]):
                raise DaskhpcError(f"PE_HOSTFILE: {line!r} is not `host slots queue range`")
            count = whole(f"PE_HOSTFILE slots of {fields[0]}", fields[1])
            nodes.append(Node(fields[0], count, count, None))
        if not nodes:
            raise DaskhpcError("PE_HOSTFILE lists no hosts")
        return Allocation(self.name, tuple(nodes), environ.get("JOB_ID"))

    def end_time(self, environ: Mapping[str, str], run: Runner,
                 now: Callable[[], float]) -> Optional[float]:
        job = environ.get("JOB_ID", "").strip()
        if not job or not environ.get("SGE_ROOT"):
            return None
        details = run(["qstat", "-j", job])
        limit = re.search(r"^hard resource_list:.*?\bh_rt=([\d:]+)", details or "",
                          flags=re.MULTILINE)
        listing = run(["qstat", "-s", "r"])
        # "job-ID prior name user state submit/start at ...": a running job's line has its start
        started = re.search(rf"^\s*{re.escape(job)}\s+\S+\s+\S+\s+\S+\s+\S+\s+"
                            r"(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)", listing or "",
                            flags=re.MULTILINE)
        if limit is None or started is None:
            return None
        try:
            start = time.mktime(time.strptime(started.group(1), "%m/%d/%Y %H:%M:%S"))
            return start + parse_hms(limit.group(1))
        except ValueError:
            return None

    def takes_jobs_here(self, environ: Mapping[str, str], which: Callable[[str], object]
                        ) -> bool:
        # PBS has a qsub too: SGE's is known by SGE_ROOT.
        return super().takes_jobs_here(environ, which) and bool(environ.get("SGE_ROOT"))


SYSTEM = Sge("sge", 40, "JOB_ID", ("PE_HOSTFILE",), "dask_jobqueue.sge:SGEJob", "qsub")
