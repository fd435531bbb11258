"""SSH launcher: one OpenSSH session per remote node, all opened at once.

The ssh client comes from $DASKHPC_SSH (default "ssh", e.g. "ssh -F cfg"); it always runs in
BatchMode, so a missing key fails at once instead of prompting. Sessions use `-tt`: when a
session ends for any reason, the remote side gets SIGHUP and the node's whole tree goes with it
(a plain `ssh host cmd` leaves the remote command running). The node the scheduler runs on gets
its workers without ssh.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import Sequence

from daskhpc.cluster.launchers.base import NodeSession
from daskhpc.cluster.launchers.local import LocalLauncher
from daskhpc.errors import DaskhpcError

# ServerAlive*: a node that vanishes without closing its connections (power loss, a pulled
# cable) is given up after 3 unanswered keepalives 3 s apart; without them its session would
# hang forever, and the node's workers with the scheduler until their heartbeats time out.
SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
               "-o", "ServerAliveInterval=3", "-o", "ServerAliveCountMax=3"]
SSH_FAILED = 255  # ssh's own exit code when the connection failed (vs the remote command's)


def ssh_command() -> list[str]:
    text = os.environ.get("DASKHPC_SSH") or "ssh"
    try:
        command = shlex.split(text)
    except ValueError as error:
        raise DaskhpcError(f"DASKHPC_SSH={text!r} is not a valid command ({error})") from None
    if not command:
        raise DaskhpcError("DASKHPC_SSH is empty; unset it or give an ssh command")
    return command


class SshSession(NodeSession):
    def unreachable(self) -> bool:
        """ssh's own failure code alone does not tell (a remote command killed by a signal
        ends the same way): a fresh connection does, within a few seconds."""
        if self.process.poll() != SSH_FAILED:
            return False
        probe = [*ssh_command(), "-o", "ConnectTimeout=3", *SSH_OPTIONS, self.hosts[0], "true"]
        try:
            return subprocess.run(probe, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=10).returncode == SSH_FAILED
        except subprocess.TimeoutExpired:
            return True


class SshLauncher(LocalLauncher):
    def launch(self) -> list[NodeSession]:
        sessions = []
        for node in self.spec.nodes:
            if node.local:
                sessions.append(self.launch_here(node.host))
            else:
                log = self.log_path(node.host)
                remote = self.remote_command(self.agent_argv(node))
                argv = [*ssh_command(), "-tt", *SSH_OPTIONS, node.host, remote]
                sessions.append(SshSession((node.host,), self.spawn(argv, log), log))
        return sessions

    def run_on_node(self, host: str, argv: Sequence[str],
                    timeout: float = 30) -> subprocess.CompletedProcess[str]:
        if self.spec.node(host).local:
            return super().run_on_node(host, argv, timeout)
        command = [*ssh_command(), *SSH_OPTIONS, host, self.remote_command(argv)]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
