"""The doctor's probe: `python -m daskhpc.doctor.probe REQUEST-JSON`, run once on every node.

It looks, reports one JSON line on stdout and exits; everything it tries (a directory in the
scratch area, TCP connections back to the doctor) is undone before it exits and bounded by a
timeout, so nothing is left on the node. It runs with the environment's Python at the path the
cluster would use, so running at all is the first finding.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import daskhpc
from daskhpc.cluster.batch.hosts import cgroup_memory_limit
from daskhpc.cluster.node.scratch import scratch_base
from daskhpc.doctor.mounts import existing_part, filesystem_of
from daskhpc.doctor.paths import directory_problem


@dataclass(frozen=True)
class Request:
    token_file: str  # written by the doctor in the state directory; read here
    token: str
    local_directory: Optional[str]  # --local-directory as given
    targets: list[tuple[str, int]]  # listening sockets on the scheduler's node
    connect_timeout: float


def read_token(request: Request) -> Optional[str]:
    """None when this node sees the doctor's token, else what it sees instead."""
    try:
        seen = Path(request.token_file).read_text()
    except OSError as error:
        return error.strerror or str(error)
    return None if seen == request.token else "a different file"


def scratch(request: Request) -> dict[str, Any]:
    path = scratch_base(request.local_directory)
    mount = filesystem_of(path)
    try:
        free: Optional[int] = shutil.disk_usage(existing_part(path)).free
    except OSError:
        free = None
    return {"path": str(path), "problem": directory_problem(path), "free": free,
            "mount": None if mount is None else {**asdict(mount), "shared": mount.shared}}


def interfaces() -> dict[str, list[str]]:
    import psutil  # in the environment; the rest of the probe needs only the standard library

    return {name: [a.address for a in addresses if a.family == socket.AF_INET]
            for name, addresses in psutil.net_if_addrs().items()}


def connect(target: tuple[str, int], timeout: float) -> Optional[str]:
    """None when a TCP connection to target opens, else why not."""
    try:
        with socket.create_connection(tuple(target), timeout=timeout):
            return None
    except socket.timeout:
        return f"no answer within {timeout:g} s: dropped on the way"
    except OSError as error:
        return error.strerror or str(error)


def report(request: Request) -> dict[str, Any]:
    with ThreadPoolExecutor(max_workers=max(1, len(request.targets))) as pool:
        attempts = {f"{host}:{port}": pool.submit(connect, (host, port), request.connect_timeout)
                    for host, port in request.targets}
        facts = {
            "hostname": socket.gethostname(),
            "python": sys.executable,
            "version": daskhpc.__version__,
            "token": read_token(request),
            "scratch": scratch(request),
            "interfaces": interfaces(),
            "memory": {"physical": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                       "cgroup": cgroup_memory_limit()},
            "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        }
        facts["connect"] = {target: attempt.result() for target, attempt in attempts.items()}
    return facts


def main(argv: Optional[list[str]] = None) -> int:
    data = json.loads((sys.argv[1:] if argv is None else argv)[0])
    request = Request(**{**data, "targets": [tuple(t) for t in data["targets"]]})
    print(json.dumps(report(request)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
