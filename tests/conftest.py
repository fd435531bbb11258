"""Shared fixtures: the real components integration tests run against."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from testbed.nodes import NodeBed, missing_requirements

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def node_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeBed]:
    """Three simulated nodes (node1..node3) with sshd, shared by the session's tests."""
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    bed = NodeBed(tmp_path_factory.mktemp("nodes"), count=3).start()
    try:
        yield bed
    finally:
        bed.stop()
