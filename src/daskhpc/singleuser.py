"""daskhpc-singleuser: JupyterHub's single-user server, started again if it dies while its batch
job lives.

Under batchspawner the server is the job's main step: when it dies, the job ends and the user's
Dask cluster with it. A site sets `c.Spawner.cmd = ["<env>/bin/daskhpc-singleuser"]`; the job
then runs `batchspawner-singleuser daskhpc-singleuser`, so batchspawner picks the port and tells
the hub once, and this process keeps the step alive, running the environment's
`jupyterhub-singleuser` as its child with the same environment: same port, same hub token, so
the hub's route and the user's cluster stay valid across a restart.

- A server killed by a signal or failing is started again (at most RESTART_LIMIT times within
  RESTART_WINDOW seconds: a server that cannot start is not retried forever).
- A server that exits on its own with 0 (JupyterLab's File > Shut Down, idle culling) ends the
  step, and with it the job, as without this wrapper.
- SIGTERM, SIGINT or SIGHUP to this process (the hub's stop is `scancel`; the walltime) is passed
  on to the server and nothing is restarted.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from types import FrameType
from typing import Optional, Sequence

RESTART_LIMIT = 5
RESTART_WINDOW = 600.0
# Slurm signals every process of the step at once: a server ended by scancel may be noticed here
# a moment before this process's own SIGTERM arrives.
SETTLE = 1.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def describe(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


def exit_code(returncode: int) -> int:
    """A child's return code as a shell reports it (128 + N when killed by signal N)."""
    return 128 - returncode if returncode < 0 else returncode


class Keeper:
    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)
        self.stopping = False
        self.child: Optional[subprocess.Popen[bytes]] = None

    def _stop(self, signum: int, frame: Optional[FrameType]) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def run(self) -> int:
        """Run the server until it ends for good; its exit code."""
        previous = {signum: signal.signal(signum, self._stop) for signum in STOP_SIGNALS}
        try:
            return exit_code(self._keep_running())
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _keep_running(self) -> int:
        restarts: deque[float] = deque()
        while True:
            self.child = subprocess.Popen(self.command)
            returncode = self.child.wait()
            if returncode == 0 or self.stopping:
                return returncode
            time.sleep(SETTLE)
            if self.stopping:
                return returncode
            now = time.monotonic()
            while restarts and now - restarts[0] > RESTART_WINDOW:
                restarts.popleft()
            if len(restarts) >= RESTART_LIMIT:
                print(f"daskhpc-singleuser: the Jupyter server ended ({describe(returncode)}) "
                      f"{RESTART_LIMIT + 1} times within {RESTART_WINDOW:.0f} s; not starting "
                      "it again (its log is above)", file=sys.stderr, flush=True)
                return returncode
            restarts.append(now)
            print(f"daskhpc-singleuser: the Jupyter server ended ({describe(returncode)}); "
                  "starting it again on the same port", file=sys.stderr, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run this environment's jupyterhub-singleuser with the given arguments, kept running."""
    server = Path(sys.executable).with_name("jupyterhub-singleuser")
    if not server.exists():
        print(f"daskhpc-singleuser: {server} is missing: this environment has no JupyterHub "
              "(re-run setup-dask.sh)", file=sys.stderr)
        return 2
    arguments = sys.argv[1:] if argv is None else list(argv)
    return Keeper([str(server), *arguments]).run()
