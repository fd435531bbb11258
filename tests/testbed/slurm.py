"""A real Slurm cluster on simulated nodes: munged, slurmctld and one slurmd per node.

slurmctld runs in the root namespace on the bed's gateway address, each slurmd inside its node's
network namespace with the node's hostname and /etc/hosts. Everything (keys, sockets, spool,
state, logs) lives in the bed's work directory and the controller port is picked free, so several
Slurm beds can run on one machine at once. Needs root, munge and Slurm (slurmctld, slurmd, client).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Mapping, Optional, Sequence

from testbed.nodes import NodeBed

SLURM_TOOLS = ("munged", "slurmctld", "slurmd", "srun", "salloc", "sbatch", "scancel", "sinfo")


def missing_requirements() -> Optional[str]:
    """Why a Slurm bed cannot be built here, or None when it can."""
    if os.geteuid() != 0:
        return "a test Slurm needs root (slurmd per network namespace)"
    for tool in SLURM_TOOLS:
        if shutil.which(tool) is None:
            return (f"a test Slurm needs {tool!r} "
                    "(apt-get install munge slurmctld slurmd slurm-client)")
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


class SlurmBed:
    """Slurm over a started NodeBed: its last node is the login node (no slurmd), the others
    are compute nodes in partition `debug`, 2 CPUs each.

    Client commands run on the login node, as users would: the nodes' names resolve there.
    """

    def __init__(self, nodes: NodeBed, workdir: Path) -> None:
        if len(nodes.nodes) < 2:
            raise ValueError("a Slurm bed needs a login node and at least one compute node")
        self.nodes = nodes
        self.compute = nodes.nodes[:-1]
        self.login = nodes.nodes[-1]
        self.workdir = workdir
        self.controller_port = 0
        self._daemons: list[subprocess.Popen[bytes]] = []
        self._munged_pid: Optional[int] = None

    @property
    def conf(self) -> Path:
        return self.workdir / "slurm.conf"

    @property
    def munge_socket(self) -> Path:
        return self.workdir / "munge" / "munge.socket"

    @property
    def env(self) -> dict[str, str]:
        """The environment for Slurm clients (srun, sbatch, squeue ...) to talk to this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    # -- life cycle ----------------------------------------------------------------------
    def start(self, timeout: float = 30) -> SlurmBed:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_munged()
            self.controller_port = _free_port()
            self._write_conf()
            self._daemons.append(subprocess.Popen(
                ["slurmctld", "-D", "-f", str(self.conf)], env=self.env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            for node in self.compute:
                self._daemons.append(self._start_slurmd(node.hostname, node.netns))
            self._wait_idle(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_munged(self) -> None:
        folder = self.munge_socket.parent
        folder.mkdir(mode=0o755, exist_ok=True)
        folder.chmod(0o755)
        key = folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        pid_file = folder / "munged.pid"
        subprocess.run(
            ["munged", "--force", f"--key-file={key}", f"--socket={self.munge_socket}",
             f"--pid-file={pid_file}", f"--log-file={folder / 'munged.log'}",
             f"--seed-file={folder / 'munged.seed'}"],
            check=True, capture_output=True, text=True)
        self._munged_pid = int(pid_file.read_text().split()[0])

    def _write_conf(self) -> None:
        bed = self.nodes
        controller = socket.gethostname().split(".")[0]
        names = ",".join(node.hostname for node in self.compute)
        # NodeAddr: the nodes' names do not resolve in the root namespace.
        addresses = ",".join(node.address for node in self.compute)
        lines = [
            f"ClusterName=dh{bed.subnet}",
            f"SlurmctldHost={controller}({bed.gateway})",
            f"SlurmctldPort={self.controller_port}",
            "SlurmdPort=6818",  # one slurmd per network namespace: no clash with other beds
            "AuthType=auth/munge",
            f"AuthInfo=socket={self.munge_socket}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={self.workdir / 'state'}",
            f"SlurmdSpoolDir={self.workdir / 'spool' / '%n'}",
            f"SlurmctldPidFile={self.workdir / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.workdir / 'slurmd.%n.pid'}",
            f"SlurmctldLogFile={self.workdir / 'slurmctld.log'}",
            f"SlurmdLogFile={self.workdir / 'slurmd.%n.log'}",
            "ProctrackType=proctrack/linuxproc",  # no cgroups inside the test namespaces
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "MpiDefault=none",
            "ReturnToService=2",
            "KillWait=2",  # scancel: SIGTERM, then SIGKILL 2 s later (default 30 s)
            "MinJobAge=10",
            "InactiveLimit=0",
            "SchedulerParameters=sched_interval=1",
            f"NodeName={names} NodeAddr={addresses} CPUs=2 RealMemory=1000 State=UNKNOWN",
            f"PartitionName=debug Nodes={names} Default=YES OverSubscribe=YES MaxTime=INFINITE",
        ]
        (self.workdir / "state").mkdir(exist_ok=True)
        (self.workdir / "spool").mkdir(exist_ok=True)
        self.conf.write_text("\n".join(lines) + "\n")

    def _start_slurmd(self, hostname: str, netns: str) -> subprocess.Popen[bytes]:
        # Not `ip netns exec`: it remounts /sys and slurmd then finds no cgroup filesystem.
        hosts = Path("/etc/netns") / netns / "hosts"
        script = 'mount --bind "$1" /etc/hosts && hostname "$2" && exec slurmd -D -f "$3" -N "$2"'
        return subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{netns}", "unshare", "--uts", "--mount",
             "sh", "-c", script, "slurmd", str(hosts), hostname, str(self.conf)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        states: str = ""
        while time.monotonic() < deadline:
            for daemon in self._daemons:
                if daemon.poll() is not None:
                    raise RuntimeError(f"a Slurm daemon exited ({daemon.args}); logs in "
                                       f"{self.workdir}")
            result = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], env=self.env,
                                    capture_output=True, text=True)
            states = result.stdout.strip()
            idle = [line for line in states.splitlines() if line.split()[-1] == "idle"]
            if result.returncode == 0 and len(idle) == len(self.compute):
                return
            time.sleep(0.1)
        raise RuntimeError(f"Slurm nodes not idle after {timeout} s: {states!r}; logs in "
                           f"{self.workdir}")

    def stop(self) -> None:
        for daemon in reversed(self._daemons):
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
        for daemon in self._daemons:
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        self._daemons = []
        if self._munged_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._munged_pid, signal.SIGTERM)
            self._munged_pid = None

    def daemon_pids(self) -> dict[str, int]:
        """Each compute node's slurmd under its hostname; "slurmctld" and "munged"."""
        pids = {"slurmctld": self._daemons[0].pid} if self._daemons else {}
        pids.update({node.hostname: daemon.pid
                     for node, daemon in zip(self.compute, self._daemons[1:])})
        if self._munged_pid is not None:
            pids["munged"] = self._munged_pid
        return pids

    # -- helpers for tests ---------------------------------------------------------------
    def run(self, argv: Sequence[str], env: Optional[Mapping[str, str]] = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A command (e.g. a Slurm client) on the login node."""
        return self.login.run(argv, env={**self.env, **(env or {})}, timeout=timeout)

    def jobs(self) -> list[str]:
        """`<id> <state>` of every job the controller still knows."""
        out = self.run(["squeue", "-h", "-o", "%i %T"]).stdout
        return [line for line in out.splitlines() if line.strip()]

    def wait_jobs_gone(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.jobs():
            if time.monotonic() > deadline:
                raise RuntimeError(f"Slurm jobs still queued or running: {self.jobs()}")
            time.sleep(0.2)
