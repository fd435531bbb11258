"""fork_detached: how the start command leaves the supervisor running on its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daskhpc.cluster.detach import fork_detached


def describe_self() -> int:
    """In the child: say where it runs, echo one line from the parent in capitals, exit 7."""
    print(json.dumps({"sid": os.getsid(0), "pid": os.getpid(), "cwd": os.getcwd(),
                      "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd"))}), flush=True)
    print("a line for the log", file=sys.stderr)
    sys.stdout.write(sys.stdin.readline().upper())
    return 7


def fail() -> int:
    raise RuntimeError("supervisor could not start")


def test_child_is_detached_talks_over_pipes_and_logs(tmp_path: Path):
    log = tmp_path / "child.log"
    child = fork_detached(describe_self, log)
    facts = json.loads(child.stdout.readline())
    child.stdin.write(b"ok\n")
    child.stdin.close()
    assert child.stdout.readline() == b"OK\n"
    assert child.wait(timeout=10) == 7
    assert facts["pid"] == child.pid
    assert facts["sid"] == child.pid != os.getsid(0)  # its own session: no ^C from our terminal
    assert facts["cwd"] == "/"
    assert facts["fds"][:3] == [0, 1, 2] and len(facts["fds"]) == 4  # + the listing's own fd
    assert log.read_text() == "a line for the log\n"
    assert log.stat().st_mode & 0o777 == 0o600


def test_a_crash_in_the_child_is_logged_and_exits_nonzero(tmp_path: Path):
    log = tmp_path / "child.log"
    child = fork_detached(fail, log)
    assert child.stdout.read() == b""  # EOF: what the start command sees
    assert child.wait(timeout=10) == 1
    assert "RuntimeError: supervisor could not start" in log.read_text()


def test_wait_times_out_and_kill_ends_the_child(tmp_path: Path):
    child = fork_detached(lambda: time.sleep(60) or 0, tmp_path / "child.log")
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.2)
    child.kill()
    assert child.wait(timeout=10) == -signal.SIGKILL
