"""The launcher contract: how a cluster's workers get onto its nodes.

A launcher is built from the ClusterSpec and its log directory. `launch()` starts, all at once
and without waiting, the processes that run every node's workers and returns one NodeSession
per process it started (a session may serve several hosts, e.g. one mpirun or one srun step).
It is called by the supervisor BEFORE the scheduler exists: workers retry until it answers.

Rules every launcher keeps (the supervisor and stop rely on them):
- Every process it starts is a child of the supervisor made with `spawn()`: it dies with the
  supervisor (PR_SET_PDEATHSIG), its output goes to its own 0600 log file, its stdin is a pipe.
- Whatever ends on a node ends that node's Dask processes: remote trees run under `ssh -tt`
  (SIGHUP when the session goes), and workers have --death-timeout.
- `NodeSession.request_stop()` asks the node agent(s) to end the node's processes; the
  session's process exits once they are gone. `kill()` is the last resort.
- Processes on nodes are recorded (host, boot id, pid, start time) in
  `<cluster_dir>/procs/<host>.json` by the node agent (daskhpc.cluster.node.agent). A launcher that
  does not use the agent must record its processes the same way (daskhpc.cluster.node.processes).
- `run_on_node(host, argv)` runs a short command on a node and returns its result; stop uses it
  to verify and reap. Nothing secret on command lines: secrets are files on the shared filesystem.

Siblings (local, ssh, mpi, srun) override only what differs.
"""

from __future__ import annotations

import functools
import os
import shlex
import signal
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from daskhpc.cluster.node.processes import die_with_parent
from daskhpc.cluster.spec import ClusterSpec, NodeSpec

AGENT_MODULE = "daskhpc.cluster.node.agent"


@dataclass
class NodeSession:
    """One started process that runs the workers of `hosts`."""

    hosts: tuple[str, ...]
    process: subprocess.Popen[bytes]
    log: Path

    def request_stop(self) -> None:
        """Ask the node agent(s) to end their workers; default protocol: a "stop" line."""
        stdin = self.process.stdin
        if stdin is None or stdin.closed:
            return
        try:
            stdin.write(b"stop\n")
            stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def unreachable(self) -> bool:
        """Whether the session ended because its node could not be reached any more (then
        nothing on that node can be checked from here)."""
        return False

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_bytes().decode(errors="replace").replace("\r", "")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


class Launcher(ABC):
    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        self.cluster_dir = Path(spec.cluster_dir)

    @abstractmethod
    def launch(self) -> list[NodeSession]:
        """Start every node's workers at once; return without waiting for them."""

    @abstractmethod
    def run_on_node(self, host: str, argv: Sequence[str],
                    timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a short command on `host` and return its result."""

    # -- helpers for siblings ---------------------------------------------------------------
    def log_path(self, name: str) -> Path:
        return self.cluster_dir / "logs" / f"{name}.log"

    def agent_argv(self, node: NodeSpec) -> list[str]:
        """The node agent for `node`: starts, records and ends that node's workers."""
        return [self.spec.python, "-m", AGENT_MODULE, self.spec.cluster_dir, node.host]

    def agent_env(self) -> dict[str, str]:
        """Environment for local children: the supervisor's, plus daskhpc importable."""
        env = dict(os.environ)
        env["PYTHONPATH"] = _join_path(self.spec.pythonpath, env.get("PYTHONPATH"))
        return env

    def remote_command(self, argv: Sequence[str]) -> str:
        """A shell command line for a remote node: same interpreter path, daskhpc importable."""
        return "exec env " + shlex.join([f"PYTHONPATH={self.spec.pythonpath}", *argv])

    def spawn(self, argv: Sequence[str], log: Path, env: Optional[Mapping[str, str]] = None,
              death_signal: int = signal.SIGTERM) -> subprocess.Popen[bytes]:
        """Start a child of the supervisor that gets `death_signal` when the supervisor dies,
        logging to a private file."""
        log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            return subprocess.Popen(
                list(argv), stdin=subprocess.PIPE, stdout=descriptor, stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None, close_fds=True,
                preexec_fn=functools.partial(die_with_parent, death_signal),
            )
        finally:
            os.close(descriptor)


def _join_path(first: str, rest: Optional[str]) -> str:
    return f"{first}{os.pathsep}{rest}" if rest else first
