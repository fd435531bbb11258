"""What every start/stop benchmark shares: a bed of simulated nodes with Slurm, CPU accounting
per node (cgroup v2), the user's environment, and waiting for a dashboard.

The bed has `nodes` compute nodes node1..nodeN (sshd and slurmd) and one more node outside the
node list, the login host (sshd, Slurm client). Each node is a cgroup of its own holding its
daemons and everything they start; the bench puts the commands it runs "on" a node into that
node's cgroup, so a node's cgroup is what that node would spend on a real cluster. Needs root.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from testbed.mpi import across_nodes_env  # noqa: E402
from testbed.mpi import missing_requirements as mpi_missing  # noqa: E402
from testbed.nodes import Node, NodeBed  # noqa: E402
from testbed.nodes import missing_requirements as nodes_missing  # noqa: E402
from testbed.slurm import SlurmBed  # noqa: E402
from testbed.slurm import missing_requirements as slurm_missing  # noqa: E402

PYTHON = str(REPO / ".venv" / "bin" / "python")
CLONE_NEWNET = 0x40000000
SLURM_GROUP = "slurm"  # controller, munged and allocations: counted, but no node's own work


def missing_requirements() -> Optional[str]:
    """Why the bench cannot run here, or None."""
    return (nodes_missing() or slurm_missing() or mpi_missing()
            or (None if cgroup2_root() else "no cgroup v2 hierarchy mounted"))


def cgroup2_root() -> Optional[Path]:
    """Where this machine mounts cgroup v2: /sys/fs/cgroup (unified) or e.g.
    /sys/fs/cgroup/unified (hybrid, as on the project's test machines, where the cpu controller
    stays in v1 but every v2 group still keeps cpu.stat)."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[2] == "cgroup2":
            return Path(fields[1])
    return None


class CpuGroups:
    """One cgroup v2 per name under a parent of our own; cpu.stat counts every process that ever
    ran in a group (and, at the parent, in all of them), including those that have exited."""

    def __init__(self, names: Sequence[str]) -> None:
        root = cgroup2_root()
        if root is None:
            raise RuntimeError("no cgroup v2 hierarchy mounted")
        self.parent = root / f"daskhpc-bench-{os.getpid()}"
        self.parent.mkdir()
        for name in names:
            (self.parent / name).mkdir()

    def join(self, name: str, pid: int) -> None:
        (self.parent / name / "cgroup.procs").write_text(f"{pid}\n")

    def joiner(self, name: str) -> Callable[[], None]:
        """A preexec_fn that moves the new process into the group before it runs anything."""
        procs = str(self.parent / name / "cgroup.procs")

        def join() -> None:
            with open(procs, "w") as handle:
                handle.write("0\n")

        return join

    def seconds(self, name: Optional[str] = None) -> float:
        group = self.parent / name if name else self.parent
        for line in (group / "cpu.stat").read_text().splitlines():
            key, value = line.split()
            if key == "usage_usec":
                return int(value) / 1e6
        raise RuntimeError(f"no usage_usec in {group}/cpu.stat")

    def pids(self, name: str) -> list[int]:
        text = (self.parent / name / "cgroup.procs").read_text()
        return [int(pid) for pid in text.split()]

    def close(self) -> None:
        for group in self.parent.iterdir():
            if group.is_dir():
                with contextlib.suppress(OSError):
                    (group / "cgroup.kill").write_text("1\n")
        for group in self.parent.iterdir():
            if group.is_dir():
                deadline = time.monotonic() + 10
                while (group / "cgroup.procs").read_text().strip():
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                with contextlib.suppress(OSError):
                    group.rmdir()
        with contextlib.suppress(OSError):
            self.parent.rmdir()


def process_cpu(pid: int) -> Optional[tuple[str, float]]:
    """(command line, CPU seconds so far) of a live process, from /proc.

    Two lower bounds, the larger taken: stat's clock ticks for the whole process, truncated
    (10 ms each: summed over many short ssh clients that was a visible error), and the
    nanoseconds of schedstat per live thread (missing threads that have ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    ticks = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    nanoseconds = 0
    for thread in threads:
        with contextlib.suppress(OSError, IndexError, ValueError):
            nanoseconds += int(Path(f"/proc/{pid}/task/{thread}/schedstat").read_text().split()[0])
    return cmdline.strip(), max(ticks, nanoseconds / 1e9)


class Bed:
    """Compute nodes node1..nodeN with sshd and slurmd, a login host outside the node list, and
    Slurm's controller on the bridge; every node in a cgroup of its own."""

    def __init__(self, workdir: Path, nodes: int) -> None:
        self.workdir = workdir
        self.count = nodes
        self.net = NodeBed(workdir / "nodes", count=nodes + 1)
        self.slurm: Optional[SlurmBed] = None
        self.groups: Optional[CpuGroups] = None
        self.daemons: set[int] = set()

    def start(self) -> Bed:
        try:
            self.net.start()
            self.slurm = SlurmBed(self.net, self.workdir / "slurm").start()
            self.groups = CpuGroups([node.hostname for node in self.net.nodes] + [SLURM_GROUP])
            for node, pid in zip(self.net.nodes, self.net.daemon_pids()):
                self.groups.join(node.hostname, pid)
            for host, pid in self.slurm.daemon_pids().items():
                self.groups.join(host if host in self.hosts else SLURM_GROUP, pid)
            self.daemons = set(self.net.daemon_pids()) | set(self.slurm.daemon_pids().values())
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def hosts(self) -> list[str]:
        return [node.hostname for node in self.net.nodes]

    @property
    def compute(self) -> list[Node]:
        return self.net.nodes[:-1]

    @property
    def login(self) -> Node:
        return self.net.nodes[-1]

    def place(self, name: str) -> Node:
        """Where a user starts: "node1" (first node of the allocation) or "login"."""
        return self.compute[0] if name == "node1" else self.login

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        """A user's environment on any node: ssh, MPI and Slurm reach this bed."""
        assert self.slurm is not None
        return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
                "PYTHONPATH": str(REPO / "src"), "DASKHPC_SSH": self.net.ssh_command,
                "SLURM_CONF": str(self.slurm.conf), **across_nodes_env(self.net), **extra}

    def popen(self, node: Node, argv: Sequence[str], env: Mapping[str, str],
              group: Optional[str] = None, **kwargs: object) -> subprocess.Popen[str]:
        """argv on `node`, counted in `group` (default: that node's own cgroup)."""
        assert self.groups is not None
        return node.popen(argv, env=env, preexec_fn=self.groups.joiner(group or node.hostname),
                          **kwargs)

    def run(self, node: Node, argv: Sequence[str], env: Mapping[str, str],
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        process = self.popen(node, argv, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = process.communicate(timeout=timeout)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def cpu(self, group: Optional[str] = None) -> float:
        assert self.groups is not None
        return self.groups.seconds(group)

    def leftovers(self) -> dict[str, list[str]]:
        """Per node, every process that is not one of the bed's daemons."""
        assert self.groups is not None
        found: dict[str, list[str]] = {}
        for host in self.hosts:
            for pid in self.groups.pids(host):
                if pid in self.daemons:
                    continue
                seen = process_cpu(pid)
                if seen is not None:
                    found.setdefault(host, []).append(f"{pid} {seen[0]}")
        return found

    def wait_until_clean(self, started: float, limit: float = 60) -> float:
        """Seconds from `started` (time.monotonic()) until no node runs anything but its
        daemons; raises, naming what is left, after `limit`."""
        while self.leftovers() and time.monotonic() - started < limit:
            time.sleep(0.01)
        left = self.leftovers()
        if left:
            raise RuntimeError(f"processes left after {limit} s: {left}")
        return time.monotonic() - started

    def kill_leftovers(self) -> None:
        """After a failed run: nothing of it may disturb the next one."""
        for found in self.leftovers().values():
            for line in found:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(line.split()[0]), signal.SIGKILL)
        with contextlib.suppress(RuntimeError):
            self.wait_until_clean(time.monotonic(), limit=10)

    def stop(self) -> None:
        if self.slurm is not None:
            self.slurm.stop()
        self.net.stop()
        if self.groups is not None:
            self.groups.close()


def installed_home(home: Path) -> Path:
    """`home` as setup-dask.sh leaves a user's: with the placeholder client certificates that
    the current-tls link points to before the user's first cluster (daskhpc.cluster.tls.
    current). They are made once beside the homes (in the bench's work directory, removed with
    it). The first start in each home makes the user's CA (daskhpc.cluster.tls.user)."""
    relative = Path(".local", "state", "daskhpc", "no-cluster-tls")
    made = home.parent / "placeholder-home"
    if not (made / relative).exists():
        subprocess.run([PYTHON, "-c", "from daskhpc.cluster.tls.current import ensure_current; "
                        "ensure_current()"], check=True,
                       env={"HOME": str(made), "PATH": "/usr/bin:/bin",
                            "PYTHONPATH": str(REPO / "src")})
    shutil.copytree(made / relative, home / relative)
    return home


def wait_for_dashboard(url: str, netns: str, timeout: float = 300.0) -> None:
    """Until the dashboard page answers 200 (our scheduler serves a 503 "starting" page first;
    others may refuse connections until their HTTP server listens), asked from inside the
    network namespace `netns` (a scheduler whose workers are all local listens on loopback)."""
    failure: list[BaseException] = []

    def poll() -> None:
        try:
            enter_netns(netns)
            poll_dashboard(url, timeout)
        except BaseException as error:
            failure.append(error)

    # A thread: setns() moves only the calling thread into the namespace.
    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def enter_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/run/netns/{name}") as handle:
        if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name} failed")


def poll_dashboard(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            # The whole remaining time: under heavy load the first render of the Bokeh page
            # takes tens of seconds, and a short timeout would restart it forever.
            remaining = max(1.0, deadline - time.monotonic())
            with urllib.request.urlopen(url, timeout=remaining) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as error:  # refused, reset, timed out
            if time.monotonic() > deadline:
                raise RuntimeError(f"dashboard {url} did not answer: {error}") from None
        time.sleep(0.02)


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max: what every table of these benchmarks reports."""
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def rotated(names: Sequence[str], round_number: int) -> list[str]:
    """The order of one round: rotate by the round and reverse every other round, so drift in
    the machine's load hits every variant alike."""
    shift = round_number % len(names)
    order = list(names[shift:]) + list(names[:shift])
    return order[::-1] if round_number % 2 else order
