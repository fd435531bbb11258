"""Process records and reaping: by PID + start time, never by name; descendants included."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

from daskhpc.cluster.node.processes import read_records, reap, record, start_time, write_records

# a parent that starts a child and then waits: a small tree like agent -> worker
TREE = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); time.sleep(600)"  # noqa: E501


def wait_for_child(pid: int) -> int:
    for _ in range(500):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.01)
    raise AssertionError("the child did not start")


def gone(pid: int, started: int) -> bool:
    for _ in range(200):
        if start_time(pid) != started:
            return True
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if status == "Z":
            return True
        time.sleep(0.01)
    return False


def test_reap_ends_recorded_process_and_its_descendants(tmp_path: Path):
    parent = subprocess.Popen([sys.executable, "-c", TREE])
    child = wait_for_child(parent.pid)
    child_started = start_time(child)
    records_file = tmp_path / "node.json"
    item = record(parent.pid, "agent")
    assert item is not None
    write_records(records_file, [item])
    records, finished = read_records(records_file)
    assert records == [item] and not finished

    assert reap(records) == [item]
    parent.wait(timeout=10)
    assert child_started is not None and gone(child, child_started)
    assert reap(records) == []  # nothing left: nothing signalled


def test_reap_never_signals_a_reused_pid(tmp_path: Path):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        item = record(bystander.pid, "worker")
        assert item is not None
        # the recorded process "ended" and its PID now belongs to another process
        stale = dataclasses.replace(item, start_time=item.start_time - 1)
        assert reap([stale]) == []
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
