"""dask-cluster-doctor: gather, run every check family, print one line per finding.

Exit status: 0 when nothing is a problem (warnings allowed), 1 when something is, 2 for bad
options (as every command).
"""

from __future__ import annotations

import os
import sys
import time

from daskhpc.doctor import findings
from daskhpc.doctor.checks import FAMILIES
from daskhpc.doctor.context import gather
from daskhpc.options import DoctorOptions


def run(options: DoctorOptions) -> int:
    began = time.monotonic()
    context = gather(options.start, os.environ)
    found = findings.merge([item for family in FAMILIES for item in family(context)])
    if options.json:
        print(findings.as_json(found))
    else:
        for item in found:
            print(findings.line(item))
        print(f"{findings.summary(found)} ({time.monotonic() - began:.1f} s)", file=sys.stderr)
    return 1 if any(item.status == findings.PROBLEM for item in found) else 0
