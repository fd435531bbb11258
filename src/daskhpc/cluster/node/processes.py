"""Process identity, records and reaping on one node. Standard library only (runs in agents).

A PID alone is not an identity: it is reused. A record is (host, boot id, pid, start time in
clock ticks since boot), so stop never signals a process that merely inherited a recorded PID.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Optional

from daskhpc.files import write_private

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl failed")


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """For preexec_fn: `signum` to this child when the process that started it dies (even by
    SIGKILL)."""
    _prctl(PR_SET_PDEATHSIG, signum)


def adopt_orphans() -> None:
    """Make descendants whose parent dies our children, so we can wait for (and end) them."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> Optional[list[str]]:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after its last ")"
    return raw[raw.rindex(")") + 2 :].split()


def start_time(pid: int) -> Optional[int]:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22 of stat


def parent_pid(pid: int) -> Optional[int]:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] in ("Z", "X")


@dataclass(frozen=True)
class ProcessRecord:
    host: str  # socket.gethostname() of the node it runs on
    boot_id: str
    pid: int
    start_time: int
    role: str  # "agent", "worker", ...

    def alive(self) -> bool:
        """True when this very process still runs here (same boot, same PID, same start)."""
        if self.host != socket.gethostname() or self.boot_id != boot_id():
            return False
        return start_time(self.pid) == self.start_time and not is_zombie(self.pid)


def record(pid: int, role: str) -> Optional[ProcessRecord]:
    started = start_time(pid)
    if started is None:
        return None
    return ProcessRecord(socket.gethostname(), boot_id(), pid, started, role)


def write_records(path: Path, records: Iterable[ProcessRecord], finished: bool = False,
                  scratch: Optional[str] = None) -> None:
    """Atomically (re)write one node's records; finished=True once the node verified all gone
    and removed its scratch directory (daskhpc.cluster.node.scratch), recorded here."""
    payload = {"records": [asdict(item) for item in records], "finished": finished,
               "scratch": scratch}
    write_private(path, json.dumps(payload))


def read_records(path: Path) -> tuple[list[ProcessRecord], bool]:
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return [], False
    return [ProcessRecord(**item) for item in payload["records"]], bool(payload["finished"])


def read_scratch(path: Path) -> Optional[str]:
    """The node's scratch directory as its agent recorded it, or None."""
    try:
        scratch = json.loads(path.read_text()).get("scratch")
    except (OSError, ValueError, AttributeError):
        return None
    return scratch if isinstance(scratch, str) else None


def children(pid: int) -> Optional[list[int]]:
    """pid's children from /proc/PID/task/*/children, or None where the kernel lacks that file."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except FileNotFoundError:
        return [] if not Path(f"/proc/{pid}").exists() else None
    except OSError:
        return []
    return found


def descendants(pid: int) -> list[int]:
    """Every live descendant of pid (children first).

    Walks the children files (cheap: agents call this every second); without them, one pass
    over all of /proc.
    """
    found: list[int] = []
    pending = [pid]
    while pending:
        direct = children(pending.pop())
        if direct is None:
            return _descendants_by_scan(pid)
        found += direct
        pending += direct
    return found


def _descendants_by_scan(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = parent_pid(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def send_signal(pids: Iterable[int], signum: int) -> None:
    """Signal each PID, ignoring those that are already gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def reap(records: Iterable[ProcessRecord], grace: float = 0.5) -> list[ProcessRecord]:
    """End the recorded processes that still run on this node, and their descendants.

    SIGTERM first, SIGKILL after `grace` seconds. Returns the records that were still alive.
    """
    alive = [item for item in records if item.alive()]
    if not alive:
        return []
    targets = {item.pid: start_time(item.pid) for item in alive}
    for item in alive:
        for pid in descendants(item.pid):
            targets.setdefault(pid, start_time(pid))
    send_signal(targets, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_still(pid, t) for pid, t in targets.items()):
        time.sleep(0.02)
    send_signal([pid for pid, t in targets.items() if _still(pid, t)], signal.SIGKILL)
    deadline = time.monotonic() + grace  # gone, not only signalled: their files go next
    while time.monotonic() < deadline and any(_still(pid, t) for pid, t in targets.items()):
        time.sleep(0.02)
    return alive


def _still(pid: int, started: Optional[int]) -> bool:
    return started is not None and start_time(pid) == started and not is_zombie(pid)
