"""Fixtures for cluster tests: a user with a private HOME, here or on node1 of the bed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_helpers import User
from slurm_jobs import SlurmUser
from testbed.nodes import NodeBed
from testbed.slurm import SlurmBed


@pytest.fixture
def user(tmp_path: Path) -> Iterator[User]:
    """A user on this machine; clusters a failed test left running are stopped afterwards,
    and no scratch directory of theirs may be left."""
    home = tmp_path / "home"
    home.mkdir()
    person = User(home)
    yield person
    stop_leftovers(person)
    assert person.wait_until_clean() == {}


def stop_leftovers(person: User) -> None:
    for cluster in person.clusters():
        if not (cluster / "stopped").exists():
            person.dask("stop", cluster.name)


@pytest.fixture
def node_user(node_bed: NodeBed, tmp_path: Path) -> Iterator[User]:
    """A user on node1 of the simulated cluster; checks that nothing is left afterwards."""
    home = tmp_path / "home"
    home.mkdir()
    person = User(home, node_bed)
    yield person
    stop_leftovers(person)
    assert person.wait_until_clean() == {}


@pytest.fixture
def slurm_user(slurm_cluster: SlurmBed, tmp_path: Path) -> Iterator[SlurmUser]:
    """A user of the test Slurm; afterwards no job is left and nothing of theirs runs."""
    person = SlurmUser(slurm_cluster, tmp_path / "home")
    yield person
    for job in slurm_cluster.jobs():
        slurm_cluster.run(["scancel", job.split()[0]])
    slurm_cluster.wait_jobs_gone()
    assert person.wait_until_clean() == {}
