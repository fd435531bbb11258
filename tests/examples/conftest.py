"""A user's install (setup-dask.sh) with a cluster from start-dask-cluster, for the notebooks."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from notebooks import NotebookCluster
from testbed.install import DaskInstall


@pytest.fixture(scope="session")
def notebook_cluster(
    dask_install: DaskInstall, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NotebookCluster]:
    """`start-dask-cluster --launcher local` as the installed user (TLS, default scheduler file).

    Started before any kernel: the environment reads the cluster's TLS settings when a Python
    starts, as a user's kernel started after start-dask-cluster would.
    """
    env = dask_install.env()
    start = subprocess.run(
        [str(dask_install.wrapper("start-dask-cluster")), "--launcher", "local",
         "--workers-per-node", "2", "--threads-per-worker", "1"],
        env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        scheduler_file = dask_install.home / "dask-scheduler.json"
        address = json.loads(scheduler_file.read_text())["address"]
        yield NotebookCluster(
            dask_install, env, address, tmp_path_factory.mktemp("example-data")
        )
    finally:
        stop = subprocess.run(
            [str(dask_install.wrapper("stop-dask-cluster"))],
            env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )
        assert stop.returncode == 0, stop.stdout + stop.stderr
