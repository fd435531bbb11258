"""One bed of simulated nodes per test module (tests break nodes and must not disturb others),
and after every test: nothing of the environment left running on any node."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from doctor_helpers import PYTHON
from testbed.nodes import NodeBed, started_bed


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeBed]:
    yield from started_bed(tmp_path_factory.mktemp("doctor-nodes"))


@pytest.fixture
def home(bed: NodeBed, tmp_path: Path) -> Iterator[Path]:
    """A user's empty home; afterwards no process of the environment runs on any node."""
    folder = tmp_path / "home"
    folder.mkdir()
    yield folder
    deadline = time.monotonic() + 30
    while (left := {n.hostname: p for n in bed.nodes if (p := n.processes(PYTHON))}) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == {}
