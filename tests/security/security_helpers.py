"""Helpers for the security tests (a module of its own: every conftest is named `conftest`)."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from daskhpc.cluster.security import ClusterTLS


@dataclass
class RunningCluster:
    tls: ClusterTLS
    scheduler_file: Path
    address: str
    log_dir: Path


def wait_for_address(path: Path, process: subprocess.Popen[bytes], log: Path) -> str:
    """The scheduler's address, once its file is complete (distributed writes it in place)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return str(json.loads(path.read_text())["address"])
        except (OSError, ValueError, KeyError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"scheduler did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)
