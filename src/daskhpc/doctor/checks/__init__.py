"""The check families, in the order their lines are printed; each is `check(context)`."""

from __future__ import annotations

from typing import Callable

from daskhpc.doctor.checks import (
    batch,
    certificates,
    dashboard,
    environment,
    limits,
    memory,
    network,
    remote,
    scheduler_file,
    scratch,
)
from daskhpc.doctor.context import Context
from daskhpc.doctor.findings import Finding

FAMILIES: list[Callable[[Context], list[Finding]]] = [
    batch.check, remote.check, environment.check, network.check, scratch.check, memory.check,
    limits.check, scheduler_file.check, certificates.check, dashboard.check,
]
