"""Simulated cluster nodes: one network namespace per node, its own hostname and sshd.

The namespaces share the filesystem, like cluster nodes sharing a home directory. Each bed takes
its own bridge, subnet and namespace names, so several beds (several test sessions) can run at
once on one machine. Needs root, iproute2, util-linux (unshare, nsenter) and openssh-server.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import pytest

SUBNETS = range(100, 200)  # 10.77.<n>.0/24, one per bed
SSHD = "/usr/sbin/sshd"


def missing_requirements() -> Optional[str]:
    """Why a bed cannot be built here, or None when it can."""
    if os.geteuid() != 0:
        return "simulated nodes need root (network namespaces)"
    for tool in ("ip", "unshare", "nsenter", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"simulated nodes need {tool!r} on PATH"
    if not Path(SSHD).exists():
        return "simulated nodes need openssh-server (apt-get install openssh-server)"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class Node:
    hostname: str
    netns: str
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """argv run inside this node: its network namespace, /etc/hosts and hostname."""
        script = 'hostname "$0"; exec "$@"'
        return ["ip", "netns", "exec", self.netns, "unshare", "--uts", "sh", "-c", script,
                self.hostname, *argv]

    def run(self, argv: Sequence[str], env: Optional[Mapping[str, str]] = None,
            timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(argv), env=dict(env) if env is not None else None,
                              capture_output=True, text=True, timeout=timeout, check=check)

    def popen(self, argv: Sequence[str], env: Optional[Mapping[str, str]] = None,
              **kwargs: object) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(argv), env=dict(env) if env is not None else None,
                                text=True, **kwargs)  # type: ignore[call-overload]

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def processes(self, pattern: str) -> list[str]:
        """Command lines of the processes in this node whose command line contains pattern."""
        found = []
        for pid in self.pids():
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            cmdline = raw.replace(b"\0", b" ").decode(errors="replace").strip()
            if pattern in cmdline:
                found.append(f"{pid} {cmdline}")
        return found


class NodeBed:
    """N nodes node1..nodeN on a private bridge, reachable over ssh with a generated key."""

    def __init__(self, workdir: Path, count: int = 3) -> None:
        self.workdir = workdir
        self.count = count
        self.subnet: Optional[int] = None
        self.nodes: list[Node] = []
        self._sshd: list[subprocess.Popen[bytes]] = []

    # -- names ---------------------------------------------------------------------------
    @property
    def bridge(self) -> str:
        return f"dhb{self.subnet}"

    @property
    def gateway(self) -> str:
        """The bridge's address in the root namespace (Slurm's controller listens here)."""
        return f"10.77.{self.subnet}.1"

    @property
    def cidr(self) -> str:
        return f"10.77.{self.subnet}.0/24"

    @property
    def ssh_config(self) -> Path:
        return self.workdir / "ssh_config"

    @property
    def ssh_command(self) -> str:
        """What to give as DASKHPC_SSH or OMPI_MCA_plm_rsh_agent to reach the nodes."""
        return f"ssh -F {shlex.quote(str(self.ssh_config))}"

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> NodeBed:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._claim_bridge()
        try:
            self._make_keys()
            hosts = self._hosts_file()
            for i in range(1, self.count + 1):
                self.nodes.append(self._make_node(i, hosts))
            self._write_ssh_config()
            for node in self.nodes:
                self._start_sshd(node)
            self._wait_for_ssh()
        except BaseException:
            self.stop()
            raise
        return self

    def _claim_bridge(self) -> None:
        for subnet in SUBNETS:
            # A bed killed before its teardown (or a namespace pinned by another mount namespace)
            # can leave its namespaces and veth links without their bridge.
            leftovers = [*Path("/run/netns").glob(f"dh{subnet}n*"),
                         *Path("/sys/class/net").glob(f"dh{subnet}v*")]
            if Path(f"/sys/class/net/dhb{subnet}").exists() or leftovers:
                continue
            try:
                _ip("link", "add", f"dhb{subnet}", "type", "bridge")
            except subprocess.CalledProcessError:
                continue  # another bed took it between the check and the add
            self.subnet = subnet
            _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            return
        raise RuntimeError("no free 10.77.x.0/24 subnet for simulated nodes")

    def _make_keys(self) -> None:
        for name in ("host_key", "client_key"):
            key = self.workdir / name
            if not key.exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                               check=True)
        authorized = self.workdir / "authorized_keys"
        authorized.write_text((self.workdir / "client_key.pub").read_text())
        authorized.chmod(0o600)

    def _hosts_file(self) -> str:
        lines = ["127.0.0.1 localhost", f"{self.gateway} gateway"]
        lines += [f"10.77.{self.subnet}.{10 + i} node{i}" for i in range(1, self.count + 1)]
        return "\n".join(lines) + "\n"

    def _make_node(self, i: int, hosts: str) -> Node:
        node = Node(hostname=f"node{i}", netns=f"dh{self.subnet}n{i}",
                    address=f"10.77.{self.subnet}.{10 + i}")
        veth = f"dh{self.subnet}v{i}"
        _ip("netns", "add", node.netns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", node.netns)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", node.netns, "link", "set", "lo", "up")
        _ip("-n", node.netns, "addr", "add", f"{node.address}/24", "dev", "eth0")
        _ip("-n", node.netns, "link", "set", "eth0", "up")
        # Without a default route Dask's own address lookup falls back to 127.0.0.1.
        _ip("-n", node.netns, "route", "add", "default", "via", f"10.77.{self.subnet}.254")
        etc = Path("/etc/netns") / node.netns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(hosts)  # `ip netns exec` mounts it on /etc/hosts
        return node

    def _write_ssh_config(self) -> None:
        key = self.workdir / "client_key"
        blocks = []
        for node in self.nodes:
            blocks.append(
                f"Host {node.hostname}\n  HostName {node.address}\n  IdentityFile {key}\n"
                "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n"
                "  LogLevel ERROR\n  ConnectTimeout 5\n"
            )
        self.ssh_config.write_text("".join(blocks))

    def _start_sshd(self, node: Node) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        conf = self.workdir / f"sshd_{node.hostname}.conf"
        conf.write_text(
            f"ListenAddress {node.address}:22\n"
            f"HostKey {self.workdir / 'host_key'}\n"
            f"PidFile {self.workdir / f'sshd_{node.hostname}.pid'}\n"
            f"AuthorizedKeysFile {self.workdir / 'authorized_keys'}\n"
            "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nMaxStartups 100:30:200\nMaxSessions 100\n"
        )
        log = self.workdir / f"sshd_{node.hostname}.log"
        self._sshd.append(subprocess.Popen(node.command([SSHD, "-D", "-f", str(conf), "-E",
                                                         str(log)])))

    def daemon_pids(self) -> list[int]:
        """The sshd of each node, in node order."""
        return [process.pid for process in self._sshd]

    def ssh(self, host: str, remote: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ssh", "-F", str(self.ssh_config), host, remote],
                              capture_output=True, text=True, timeout=timeout)

    def _wait_for_ssh(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while True:
                try:
                    result = self.ssh(node.hostname, "hostname", timeout=10)
                except subprocess.TimeoutExpired:  # a loaded machine: try again until the deadline
                    result = subprocess.CompletedProcess([], 255, "", "ssh timed out")
                if result.returncode == 0 and result.stdout.strip() == node.hostname:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sshd on {node.hostname} did not answer: {result.stderr}")
                time.sleep(0.1)

    def processes(self, pattern: str) -> dict[str, list[str]]:
        """Per node, the processes whose command line contains pattern (sshd excluded)."""
        return {node.hostname: [p for p in node.processes(pattern) if SSHD not in p]
                for node in self.nodes}

    def wait_until_gone(self, pattern: str, started: float, limit: float = 60) -> float:
        """Seconds from `started` (time.monotonic()) until no node runs a process whose command
        line contains pattern; raises, naming them, if some are still there after `limit`."""
        while any(self.processes(pattern).values()) and time.monotonic() - started < limit:
            time.sleep(0.01)
        left = {host: found for host, found in self.processes(pattern).items() if found}
        if left:
            raise RuntimeError(f"processes left after {limit} s: {left}")
        return time.monotonic() - started

    def stop(self) -> None:
        for node in self.nodes:
            for pid in node.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for proc in self._sshd:
            proc.wait(timeout=10)
        for node in self.nodes:
            subprocess.run(["ip", "netns", "del", node.netns], capture_output=True)
            shutil.rmtree(Path("/etc/netns") / node.netns, ignore_errors=True)
        if self.subnet is not None:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        self.nodes = []
        self._sshd = []


def started_bed(workdir: Path, count: int = 3) -> Iterator[NodeBed]:
    """For fixtures: a started bed, stopped afterwards; the test skips where none can be built."""
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    bed = NodeBed(workdir, count=count).start()
    try:
        yield bed
    finally:
        bed.stop()
