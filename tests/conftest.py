"""Shared fixtures: the real components integration tests run against."""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from testbed import mpi as mpi_testbed
from testbed import slurm as slurm_testbed
from testbed.install import DaskInstall, install_into
from testbed.nodes import NodeBed, missing_requirements, started_bed
from testbed.slurm import SlurmBed

REPO = Path(__file__).resolve().parents[1]
# Markers of tests whose real part cannot be installed on CI's machines (no conda channel is
# reachable there); every other test must run in CI.
SKIPPABLE_IN_CI = {"conda"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, None]:
    """In CI a skip is a failure: a missing tool must be installed by tests/setup-test-env.sh,
    not hidden behind a skip that a machine with the tool by hand would never show."""
    outcome = yield
    report = outcome.get_result()
    if (os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail")
            and not SKIPPABLE_IN_CI & {mark.name for mark in item.iter_markers()}):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (f"skipped in CI, where every test must run: {reason} "
                           "(install what it needs in tests/setup-test-env.sh)")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def node_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeBed]:
    """Three simulated nodes (node1..node3) with sshd, shared by the session's tests."""
    yield from started_bed(tmp_path_factory.mktemp("nodes"))


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmBed]:
    """A real Slurm (munged, slurmctld, slurmd on node1..node3) on its own simulated nodes,
    with node4 as the login node its `run` uses.

    Its own nodes, not node_bed's: the slurmd daemons would show up in other tests' process
    checks. Clients need `slurm_cluster.env` (SLURM_CONF).
    """
    reason = missing_requirements() or slurm_testbed.missing_requirements()
    if reason:
        pytest.skip(reason)
    nodes = NodeBed(tmp_path_factory.mktemp("slurm-nodes"), count=4).start()
    try:
        slurm = SlurmBed(nodes, tmp_path_factory.mktemp("slurm")).start()
        try:
            yield slurm
        finally:
            slurm.stop()
    finally:
        nodes.stop()


@pytest.fixture(scope="session")
def mpi_available() -> None:
    """Skips the test when mpirun or mpi4py is missing."""
    reason = mpi_testbed.missing_requirements()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def dask_install(tmp_path_factory: pytest.TempPathFactory) -> DaskInstall:
    """`sh setup-dask.sh --yes --backend venv` for real, once per session, in a throw-away HOME.

    Gives home, prefix (the env), python, bin_dir, kernel_name, kernel_dir and env() (HOME,
    PATH with the wrappers, XDG_*) to run the wrappers or the kernel as that user.
    """
    return install_into(tmp_path_factory.mktemp("dask-install") / "home")
