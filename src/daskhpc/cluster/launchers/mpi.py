"""MPI launcher: one mpirun starts the node agent on every node, for sites where MPI is the way in.

mpirun (Open MPI or MPICH's Hydra, whichever is on PATH or loaded as a module) reaches the nodes
the way the site configured it: through Slurm/PBS inside a job, or its own remote shell agent.
One MPI application context per node (MPMD `-np 1 -host H AGENT ... H : ...`), so each agent is
told exactly which node it serves. The agents do not initialise MPI, so starting worker processes
from them is a plain fork/exec even where MPI forbids fork in ranks; `--no-nanny` still gives
single-process workers. The interface choice goes to MPI's TCP transports and to the workers.
Stop: SIGUSR1 to mpirun, which forwards it to every rank at once; the agents take it as "stop"
(Open MPI does not deliver stdin to ranks on its own node, so the "stop" line cannot be used).
If the supervisor dies, Open MPI's mpirun gets SIGTERM (PR_SET_PDEATHSIG) and kills every rank,
giving them STOP_GRACE to end their workers first. Hydra's gets SIGKILL: on SIGTERM its clean-up
now and then left a rank running (until its workers' death timeout), while a killed mpiexec's
proxies lose their control connection and kill their ranks at once (35 times in 35 tries). A
node's rank dies with its MPI daemon (proxy) when that node's link is lost.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Sequence

from daskhpc.cluster.launchers.base import Launcher, NodeSession
from daskhpc.cluster.launchers.ssh import kex_options
from daskhpc.cluster.node.agent import STOP_GRACE
from daskhpc.cluster.spec import ClusterSpec
from daskhpc.errors import DaskhpcError


@functools.cache
def mpi_flavour(mpirun: str) -> str:
    """"openmpi" or "mpich" (Hydra), from `mpirun --version`."""
    try:
        banner = subprocess.run([mpirun, "--version"], capture_output=True, text=True,
                                timeout=30, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DaskhpcError(f"{mpirun} --version failed ({error}); load an MPI module") from None
    if "Open MPI" in banner or "OpenRTE" in banner:
        return "openmpi"
    if "HYDRA" in banner or "MPICH" in banner:
        return "mpich"
    raise DaskhpcError(f"{mpirun} is neither Open MPI nor MPICH; use --launcher ssh or srun")


def find_mpirun() -> str:
    for name in ("mpirun", "mpiexec"):
        path = shutil.which(name)
        if path:
            return path
    raise DaskhpcError("no mpirun or mpiexec on PATH; load your site's MPI module "
                       "(e.g. `module load openmpi`) or use --launcher ssh")


def mca_param_configured(name: str, mpirun: str) -> bool:
    """Whether Open MPI gets `name` from the environment or a parameter file (where a value
    given by us on the command line would override the site's)."""
    if f"OMPI_MCA_{name}" in os.environ:
        return True
    listed = os.environ.get("OMPI_MCA_mca_param_files")  # noqa: SIM112 (Open MPI spells it so)
    prefix = Path(os.path.realpath(mpirun)).parent.parent
    files = (listed.split(":") if listed else
             [Path.home() / ".openmpi" / "mca-params.conf",
              prefix / "etc" / "openmpi-mca-params.conf",
              Path("/etc/openmpi/openmpi-mca-params.conf")])  # Debian's
    for path in files:
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            continue
        if any(line.split("=", 1)[0].strip() == name for line in lines):
            return True
    return False


class MpiSession(NodeSession):
    def request_stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)  # forwarded to every rank


class MpiLauncher(Launcher):
    def __init__(self, spec: ClusterSpec) -> None:
        super().__init__(spec)
        self.mpirun = find_mpirun()  # at start: no MPI is a clear error before anything runs
        self.hydra = mpi_flavour(self.mpirun) == "mpich"

    def global_options(self) -> list[str]:
        """Options for the whole run: no stdin, time to stop, the interface, no binding."""
        interface = self.spec.interface
        if not self.hydra:
            options = ["--stdin", "none", "--bind-to", "none", "--oversubscribe",
                       "--mca", "odls_base_sigkill_timeout", f"{STOP_GRACE + 2:g}",
                       *self.rsh_kex]
            if os.environ.get("SLURM_JOB_ID"):
                # mpirun starts its daemons with srun: let that step share the job's CPUs
                # with the batch step and with other steps (stop's checks run beside it).
                options += ["--mca", "plm_slurm_args", "--overlap"]
            if interface:
                options += ["--mca", "btl_tcp_if_include", interface,
                            "--mca", "oob_tcp_if_include", interface]
            return options
        options = ["-bind-to", "none"]
        if interface:
            options += ["-iface", interface]
        return options

    @functools.cached_property
    def rsh_kex(self) -> list[str]:
        """Open MPI's own ssh launch (plm_rsh) with the ssh launcher's key-exchange order
        (launchers/ssh.py: 75-110 ms of CPU per node saved on OpenSSH 9.0-9.8), unless the site
        or user configured plm_rsh_args. Inside a batch job Open MPI launches through the batch
        system and ignores it."""
        remote = [node.host for node in self.spec.nodes if not node.local]
        if not remote or mca_param_configured("plm_rsh_args", self.mpirun):
            return []
        # plm_rsh_agent: alternatives separated by ":", the first one found is used
        agent = (os.environ.get("OMPI_MCA_plm_rsh_agent")  # noqa: SIM112 (as above)
                 or "ssh").split(":")[0]
        try:
            command = tuple(shlex.split(agent))
        except ValueError:
            return []
        kex = kex_options(command, remote[0]) if command else ()
        return ["--mca", "plm_rsh_args", " ".join(kex)] if kex else []

    def mpmd(self, contexts: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
        """mpirun running each (host, argv) as one process on that host.

        Open MPI takes `-host` per application context. Hydra takes hosts only once, for the
        whole run: with `-hosts h1:1,h2:1,...` it places rank i (= context i) on host i.
        """
        argv = [self.mpirun, *self.global_options()]
        if self.hydra:
            argv += ["-hosts", ",".join(f"{host}:1" for host, _ in contexts)]
        for index, (host, command) in enumerate(contexts):
            if index:
                argv.append(":")
            argv += ["-np", "1", *([] if self.hydra else ["-host", host]), *command]
        return argv

    def launch(self) -> list[NodeSession]:
        argv = self.mpmd([(node.host, self.agent_argv(node)) for node in self.spec.nodes])
        log = self.log_path("mpirun")
        process = self.spawn(argv, log, env=self.agent_env(),
                             death_signal=signal.SIGKILL if self.hydra else signal.SIGTERM)
        return [MpiSession(tuple(node.host for node in self.spec.nodes), process, log)]

    def run_on_node(self, host: str, argv: Sequence[str],
                    timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.mpmd([(host, argv)]), capture_output=True, text=True,
                              timeout=timeout, env=self.agent_env(), stdin=subprocess.DEVNULL)
