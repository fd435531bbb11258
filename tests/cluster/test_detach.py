"""spawn_supervisor: how the start command leaves the supervisor running on its own."""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import pytest

from daskhpc.cluster.head.detach import MODULE, spawn_supervisor

SRC = Path(__file__).resolve().parents[2] / "src"


def test_supervisor_is_a_fresh_detached_interpreter_that_logs(tmp_path: Path):
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    spec = cluster / "spec.json"
    os.mkfifo(spec)  # the child blocks reading its plan until we write it: time to look at it
    log = tmp_path / "supervisor.log"
    child = spawn_supervisor(sys.executable, str(SRC), cluster, log)
    try:
        deadline = time.monotonic() + 30
        while MODULE.encode() not in Path(f"/proc/{child.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline, "the child never ran the supervisor module"
            time.sleep(0.01)
        cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1:4] == [b"-m", MODULE.encode(), str(cluster).encode()]  # not a fork
        assert os.getsid(child.pid) == child.pid != os.getsid(0)  # no ^C from our terminal
        assert os.readlink(f"/proc/{child.pid}/cwd") == "/"
        stdio = [os.readlink(f"/proc/{child.pid}/fd/{fd}") for fd in (0, 1, 2)]
        assert stdio[0].startswith("pipe:") and stdio[1].startswith("pipe:")
        assert stdio[2] == str(log)
        spec.write_text("not a plan")  # the child reads it, cannot parse it, and ends
        assert child.stdout is not None and child.stdout.read() == b""  # start sees EOF
        assert child.wait(timeout=30) == 1
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "JSONDecodeError" in log.read_text()
    assert log.stat().st_mode & 0o777 == 0o600


def _open_files_limit(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError(f"no open-files line in /proc/{pid}/limits")


def test_supervisor_raises_its_open_files_limit_to_the_hard_one(tmp_path: Path):
    """It holds a pipe per node session and its scheduler connections per worker: the usual
    soft limit of 1,024 would end a start of a few hundred nodes."""
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    spec = cluster / "spec.json"
    os.mkfifo(spec)  # the child waits for its plan: time to read its limits
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 64:
        pytest.skip(f"the hard open-files limit here ({hard}) leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))  # inherited by the child
    try:
        child = spawn_supervisor(sys.executable, str(SRC), cluster, tmp_path / "supervisor.log")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        expected = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        deadline = time.monotonic() + 30
        while _open_files_limit(child.pid)[0] == "64":
            assert time.monotonic() < deadline, "the supervisor kept the soft limit of 64"
            time.sleep(0.01)
        raised, kept = _open_files_limit(child.pid)
        assert kept == expected  # the hard limit is the site's
        assert raised == (Path("/proc/sys/fs/nr_open").read_text().strip()
                          if hard == resource.RLIM_INFINITY else expected)
        spec.write_text("not a plan")
        assert child.wait(timeout=30) == 1
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
