"""Local launcher: every worker on this node, started as a child of the supervisor."""

from __future__ import annotations

import subprocess
from typing import Sequence

from daskhpc.cluster.launchers.base import Launcher, NodeSession
from daskhpc.errors import DaskhpcError


class LocalLauncher(Launcher):
    def launch(self) -> list[NodeSession]:
        return [self.launch_here(node.host) for node in self.spec.nodes]

    def launch_here(self, host: str) -> NodeSession:
        """Run the agent of `host` on this machine without ssh (ssh uses it for its own node)."""
        log = self.log_path(host)
        process = self.spawn(self.agent_argv(self.spec.node(host)), log, env=self.agent_env())
        return NodeSession((host,), process, log)

    def run_on_node(self, host: str, argv: Sequence[str],
                    timeout: float = 30) -> subprocess.CompletedProcess[str]:
        if not self.spec.node(host).local:
            raise DaskhpcError(f"the local launcher cannot reach {host}; use --launcher ssh")
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              env=self.agent_env())
