"""spawn_supervisor: how the start command leaves the supervisor running on its own."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

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
