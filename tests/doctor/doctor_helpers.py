"""Run the doctor as a user would, and break the simulated nodes the ways users' nodes break.

Each node's sshd runs in its own mount namespace (made by `ip netns exec` when the bed started),
and every ssh session on that node inherits it: a mount made there with nsenter changes what
that one node sees, as a node with a different filesystem would.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from testbed.nodes import SSHD, Node, NodeBed

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable  # the dev venv: the environment every node shares
STATUSES = ("ok", "warning", "problem")


@dataclass
class Report:
    """The doctor's output: lines by status, and its exit code."""

    returncode: int
    stdout: str
    stderr: str

    def lines(self, status: str) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith(status)]

    def only(self, status: str, check: str) -> str:
        """The one line of that status, which must be about that check."""
        found = self.lines(status)
        assert len(found) == 1, self.stdout + self.stderr
        assert found[0].split(None, 1)[1].startswith(check + ":"), found[0]
        return found[0]


def user_env(bed: NodeBed, home: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
            "PYTHONPATH": str(REPO / "src"), "DASKHPC_SSH": bed.ssh_command, **extra}


def run(bed: NodeBed, home: Path, command: str, *args: str, timeout: float = 180,
        **extra: str) -> Report:
    """A daskhpc command run by the user on node1."""
    result = bed.nodes[0].run([PYTHON, "-m", "daskhpc", command, *args],
                              env=user_env(bed, home, **extra), timeout=timeout)
    return Report(result.returncode, result.stdout, result.stderr)


def doctor(bed: NodeBed, home: Path, *args: str, **extra: str) -> Report:
    hosts = ",".join(node.hostname for node in bed.nodes)
    return run(bed, home, "doctor", "--hosts", hosts, *args, **extra)


def doctor_json(bed: NodeBed, home: Path, *args: str) -> dict[str, Any]:
    report = doctor(bed, home, "--json", *args)
    data: dict[str, Any] = json.loads(report.stdout)
    return data


def sshd_pid(node: Node) -> int:
    for pid in node.pids():
        with contextlib.suppress(OSError):
            text = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            # the listener, as itself or under its process title ("sshd: /usr/sbin/sshd -D ...")
            if text.startswith((f"{SSHD} -D", f"sshd: {SSHD} -D")):
                return pid
    raise RuntimeError(f"no sshd found on {node.hostname}")


def in_node_mounts(node: Node, *argv: str) -> None:
    """Run argv in the mount namespace of the node's sshd (its ssh sessions see the result)."""
    subprocess.run(["nsenter", "-t", str(sshd_pid(node)), "-m", *argv], check=True,
                   capture_output=True, text=True)


@contextlib.contextmanager
def mounted(node: Node, *mount_argv: str, target: str) -> Iterator[None]:
    """A mount seen by `node` alone, undone afterwards."""
    in_node_mounts(node, *mount_argv)
    try:
        yield
    finally:
        in_node_mounts(node, "umount", "-l", target)


def own_memory_cgroup() -> Optional[Path]:
    """This process's cgroup v1 memory directory, where a child limit can be made."""
    root = Path("/sys/fs/cgroup/memory")
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, relative = line.split(":", 2)
        if "memory" in controllers.split(",") and (root / "cgroup.procs").exists():
            return root / relative.lstrip("/")
    return None
