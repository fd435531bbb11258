"""The scratch convention's guard: a cluster directory whose name others can guess (a shared /tmp)
is taken only when it is a real directory of ours."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from daskhpc.cluster.node import scratch


def test_made_private_and_an_own_leftover_taken_back(tmp_path: Path) -> None:
    fresh = tmp_path / "daskhpc-1-node1"
    scratch.make(fresh)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
    own = tmp_path / "daskhpc-2-node1"
    own.mkdir(mode=0o755)
    scratch.make(own)
    assert stat.S_IMODE(own.stat().st_mode) == 0o700


def test_a_planted_link_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "someone-elses"
    elsewhere.mkdir()
    planted = tmp_path / "daskhpc-3-scheduler"
    planted.symlink_to(elsewhere)
    with pytest.raises(FileExistsError, match="not a directory of yours"):
        scratch.make(planted)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_another_users_directory_is_refused(tmp_path: Path) -> None:
    planted = tmp_path / "daskhpc-4-node2"
    planted.mkdir(mode=0o777)
    os.chown(planted, 65534, 65534)  # nobody
    with pytest.raises(FileExistsError, match="not a directory of yours"):
        scratch.make(planted)


def test_only_directories_of_the_convention_are_removed(tmp_path: Path) -> None:
    other = tmp_path / "results"
    other.mkdir()
    scratch.remove(str(other))  # a record file edited by hand must not lead here
    assert other.is_dir()
    ours = tmp_path / "daskhpc-5-node3"
    (ours / "node3-0").mkdir(parents=True)
    scratch.remove(str(ours))
    assert not ours.exists()
