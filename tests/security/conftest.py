"""A real TLS scheduler and worker of one cluster, started with the CLI arguments daskhpc uses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from security_helpers import RunningCluster, stop_processes, wait_for_address

from daskhpc.cluster.tls.material import create_standalone_tls

DASK = str(Path(sys.executable).with_name("dask"))


@pytest.fixture(scope="session")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """`dask scheduler` + one `dask worker`, both with the cluster's certificates, on loopback."""
    base = tmp_path_factory.mktemp("tls-cluster")
    tls = create_standalone_tls(base / "tls")
    scheduler_file = base / "scheduler.json"
    log_dir = base / "logs"
    log_dir.mkdir(mode=0o700)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        scheduler_log = log_dir / "scheduler.log"
        with scheduler_log.open("wb") as log:
            processes.append(subprocess.Popen(
                [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                 "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file),
                 *tls.cli_args("scheduler")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            ))
        address = wait_for_address(scheduler_file, processes[0], scheduler_log)
        with (log_dir / "worker.log").open("wb") as log:
            processes.append(subprocess.Popen(
                [DASK, "worker", address, "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1",
                 "--death-timeout", "30", *tls.cli_args("worker")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            ))
        yield RunningCluster(tls, scheduler_file, address, log_dir)
    finally:
        stop_processes(processes)


@pytest.fixture
def clean_dask_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a new interpreter with none of the user's Dask settings."""
    for name in list(os.environ):
        if name.startswith(("DASK_", "JUPYTERHUB_")):
            monkeypatch.delenv(name)
    return dict(os.environ)
