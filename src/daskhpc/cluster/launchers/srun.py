"""srun launcher: inside a Slurm job, one job step runs the node agent on every node.

One task per node, `--overlap` so the step shares the CPUs the batch step or other steps hold
(otherwise it waits forever for free cores; a JupyterHub server's own step too), and stdin
broadcast to every task so the "stop" line reaches every agent. When the supervisor dies, srun
gets SIGUSR1 (PR_SET_PDEATHSIG), which it forwards to every task: each agent ends its workers
and removes its scratch, then the step ends (SIGTERM would make srun SIGKILL the tasks at once,
leaving their directories for stop to remove). `scancel` or the walltime signal the agents
directly. Each task learns its node from SLURMD_NODENAME, the name the allocation lists it under.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from typing import Sequence

from daskhpc.cluster.launchers.base import Launcher, NodeSession
from daskhpc.cluster.spec import ClusterSpec
from daskhpc.errors import DaskhpcError

# The agent's last argument is the node it runs on; every task has the same command line.
_ON_THIS_NODE = 'exec "$@" "$SLURMD_NODENAME"'
# By its path: the step runs with the user's PATH (--export=ALL), which may be empty or odd.
_SHELL = "/bin/sh"


def _job_id() -> str:
    job = os.environ.get("SLURM_JOB_ID", "")
    if not job:
        raise DaskhpcError(
            "the srun launcher works inside a Slurm job (no SLURM_JOB_ID); "
            "use salloc/sbatch, or --launcher ssh"
        )
    return job


def _find_srun() -> str:
    path = shutil.which("srun")
    if path is None:
        raise DaskhpcError("no srun on PATH inside this Slurm job; load the Slurm module "
                           "or use --launcher ssh")
    return path


class SrunLauncher(Launcher):
    def __init__(self, spec: ClusterSpec) -> None:
        super().__init__(spec)
        # Checked when the cluster is planned, so outside a job nothing starts; stop's checks
        # on the nodes also run as steps of this job.
        self.job = _job_id()
        self.srun = _find_srun()

    def step_options(self, hosts: Sequence[str]) -> list[str]:
        return [
            f"--jobid={self.job}",
            "--overlap",
            f"--nodes={len(hosts)}",
            f"--ntasks={len(hosts)}",
            "--ntasks-per-node=1",
            f"--nodelist={','.join(hosts)}",
            "--cpu-bind=none",
            "--kill-on-bad-exit=0",  # one node failing must not take the others down
            # Our whole environment (PATH above all): a job submitted with --export=<list>,
            # as JupyterHub's batchspawner does, leaves SLURM_EXPORT_ENV=<list> behind, which
            # srun would otherwise take as its own --export.
            "--export=ALL",
        ]

    def launch(self) -> list[NodeSession]:
        hosts = [node.host for node in self.spec.nodes]
        log = self.log_path("srun")
        # agent_argv's last element is a host; each task puts its own node there instead.
        agent = self.agent_argv(self.spec.nodes[0])[:-1]
        argv = [self.srun, *self.step_options(hosts), "--input=all",
                f"--job-name=dask-{self.spec.cluster_id}",
                _SHELL, "-c", _ON_THIS_NODE, "daskhpc-agent", *agent]
        process = self.spawn(argv, log, env=self.agent_env(), death_signal=signal.SIGUSR1)
        return [NodeSession(tuple(hosts), process, log)]

    def run_on_node(self, host: str, argv: Sequence[str],
                    timeout: float = 30) -> subprocess.CompletedProcess[str]:
        command = [self.srun, *self.step_options([host]), "--input=none", *argv]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env=self.agent_env(), stdin=subprocess.DEVNULL)
