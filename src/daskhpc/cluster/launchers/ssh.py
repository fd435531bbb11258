"""SSH launcher: one OpenSSH session per remote node, all opened at once.

The ssh client comes from $DASKHPC_SSH (default "ssh", e.g. "ssh -F cfg"); it always runs in
BatchMode, so a missing key fails at once instead of prompting. Sessions use `-tt`: when a
session ends for any reason, the remote side gets SIGHUP and the node's whole tree goes with it
(a plain `ssh host cmd` leaves the remote command running). The node the scheduler runs on gets
its workers without ssh.

Key exchange: OpenSSH 9.0-9.8 prefer sntrup761x25519, whose key generation costs the client
about 75 ms of CPU per connection (measured: 90-110 ms per handshake against 15-18 ms with
curve25519-sha256), so the node that starts 1,000 nodes would spend most of its time there
(bench/README.md, "Start and stop at scale"). Where the effective list (`ssh -G`: command line,
user and system config) starts with sntrup761 and allows curve25519-sha256, the sessions put
curve25519-sha256 first: the list is only reordered, nothing the config forbids is added, and
OpenSSH 9.9+'s default (mlkem768x25519, fast and post-quantum) is left alone. These sessions
carry the agent's command line and log output, never secrets (base.py). A site that wants the
post-quantum exchange anyway sets it in DASKHPC_SSH (`ssh -o KexAlgorithms=...`: the first value
given wins).
"""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
from typing import Sequence

from daskhpc.cluster.launchers.base import NodeSession
from daskhpc.cluster.launchers.local import LocalLauncher
from daskhpc.errors import DaskhpcError

SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]


def ssh_command() -> list[str]:
    text = os.environ.get("DASKHPC_SSH") or "ssh"
    try:
        command = shlex.split(text)
    except ValueError as error:
        raise DaskhpcError(f"DASKHPC_SSH={text!r} is not a valid command ({error})") from None
    if not command:
        raise DaskhpcError("DASKHPC_SSH is empty; unset it or give an ssh command")
    return command


SLOW_KEX = "sntrup761x25519-sha512"  # also spelled with @openssh.com
FAST_KEX = "curve25519-sha256"


def kex_options(command: tuple[str, ...], host: str) -> tuple[str, ...]:
    """`-o KexAlgorithms=...` putting curve25519 before sntrup761 (see the module's docstring),
    or nothing when the effective list does not start with sntrup761 or cannot be read."""
    try:
        result = subprocess.run([*command, *SSH_OPTIONS, "-G", host], capture_output=True,
                                text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "kexalgorithms":
            names = value.strip().split(",")
            if names[0].startswith(SLOW_KEX) and FAST_KEX in names:
                names.remove(FAST_KEX)
                return ("-o", "KexAlgorithms=" + ",".join([FAST_KEX, *names]))
    return ()


class SshLauncher(LocalLauncher):
    name = "ssh"

    @functools.cached_property
    def kex(self) -> tuple[str, ...]:
        """Read once per cluster, from the first remote node's effective configuration."""
        remote = [node.host for node in self.spec.nodes if not node.local]
        return kex_options(tuple(ssh_command()), remote[0]) if remote else ()

    def ssh_argv(self) -> list[str]:
        return [*ssh_command(), *SSH_OPTIONS, *self.kex]

    def launch(self) -> list[NodeSession]:
        sessions = []
        for node in self.spec.nodes:
            if node.local:
                sessions.append(self.launch_here(node.host))
            else:
                log = self.log_path(node.host)
                remote = self.remote_command(self.agent_argv(node))
                argv = [*self.ssh_argv(), "-tt", node.host, remote]
                sessions.append(NodeSession((node.host,), self.spawn(argv, log), log))
        return sessions

    def run_on_node(self, host: str, argv: Sequence[str],
                    timeout: float = 30) -> subprocess.CompletedProcess[str]:
        if self.spec.node(host).local:
            return super().run_on_node(host, argv, timeout)
        command = [*self.ssh_argv(), host, self.remote_command(argv)]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
