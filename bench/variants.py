"""The ways to start and stop a Dask cluster that the benchmarks compare, each timed the same way.

Every variant runs from a start place (a node of the bed: node1, inside the node list, or the
login host outside it), puts 1 worker with 2 threads on each compute node, and returns a
Measurement:
  - start: launching the command until all workers are connected (our command returns then;
    the others' client sees them all);
  - dashboard: launching until the printed dashboard address answers 200;
  - stop: asking for the stop until no process but the bed's daemons is left on any node;
  - cpu_start / cpu: CPU seconds of every node's cgroup (and Slurm's), launch to ready / clean;
  - head_cpu: CPU seconds of the start place's cgroup, launch to ready, and head_parts: what the
    processes still alive there at ready have used, by kind ("exited": everything else, mostly
    the start command itself).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterator, Optional, Sequence

from harness import PYTHON, REPO, SLURM_GROUP, Bed, installed_home, process_cpu, wait_for_dashboard
from testbed.nodes import Node

DASK_MPI = str(REPO / ".venv" / "bin" / "dask-mpi")
WORKER_SIZE = ["--workers-per-node", "1", "--threads-per-worker", "2"]

# How the upstream tools' client scripts report readiness: one line "READY <dashboard url>".
READY = """
from urllib.parse import urlparse
def ready(client):
    port = client.scheduler_info()["services"]["dashboard"]
    host = urlparse(client.scheduler.address).hostname
    print("READY", f"http://{host}:{port}/status", flush=True)
"""

SSHCLUSTER = READY + """
import sys
from dask.distributed import Client, SSHCluster
key, python, count, *hosts = sys.argv[1:]
cluster = SSHCluster(
    hosts,  # the first runs the scheduler
    connect_options={"known_hosts": None, "client_keys": [key], "username": "root"},
    worker_options={"nthreads": 2, "local_directory": "/tmp"},
    scheduler_options={"port": 0, "dashboard_address": ":0"},
    remote_python=python,
)
client = Client(cluster)
client.wait_for_workers(int(count))
ready(client)
sys.stdin.readline()
client.close()
cluster.close()
"""

DASK_MPI_CLIENT = READY + """
import os, sys, time
from dask.distributed import Client
path, count = sys.argv[1], int(sys.argv[2])
while not os.path.exists(path):
    time.sleep(0.01)
client = Client(scheduler_file=path, timeout=120)
client.wait_for_workers(count, timeout=300)
ready(client)
sys.stdin.readline()
client.shutdown()
"""

# Every task of `srun -n N+2` runs this: rank 0 the scheduler, rank 1 the client, the rest
# workers (dask-jobqueue's SLURMRunner); the client ends it all when the stop file appears.
SLURM_RUNNER = READY + """
import os, sys, time
from dask.distributed import Client
from dask_jobqueue.slurm import SLURMRunner
scheduler_file, count, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with SLURMRunner(scheduler_file=scheduler_file,
                 scheduler_options={"dashboard_address": ":0"},
                 worker_options={"nthreads": 2, "local_directory": "/tmp"}) as runner:
    with Client(runner) as client:
        client.wait_for_workers(count, timeout=300)
        ready(client)
        while not os.path.exists(stop):
            time.sleep(0.01)
"""


@dataclass
class Measurement:
    start: float
    dashboard: float
    stop: float
    cpu_start: float
    cpu: float
    head_cpu: float
    head_parts: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {key: (round(value, 3) if isinstance(value, float) else value)
                for key, value in asdict(self).items()}


def kind_of(cmdline: str) -> str:
    """What a live process on the start place is, for the head node's cost."""
    program = Path(cmdline.split(" ", 1)[0]).name
    if program in ("ssh", "mpirun", "srun", "salloc", "orted", "prted", "sleep"):
        return program
    if "distributed.cli.dask_worker" in cmdline or "daskhpc.cluster.node.agent" in cmdline:
        return "workers"
    if "daskhpc.cluster." in cmdline and ".detach " in cmdline:
        return "supervisor"  # a fresh interpreter started by the start command: the scheduler
    return "client" if program.startswith("python") else "other"


class Timing:
    """The clock and CPU counters of one start-stop cycle run from `place`."""

    def __init__(self, bed: Bed, place: Node) -> None:
        self.bed = bed
        self.place = place.hostname
        self.netns = place.netns
        self.cpu0 = bed.cpu()
        self.head0 = bed.cpu(self.place)
        self.t0 = time.monotonic()
        self.values: dict[str, float] = {}
        self.parts: dict[str, float] = {}

    def ready(self) -> None:
        self.values["start"] = time.monotonic() - self.t0
        self.values["cpu_start"] = self.bed.cpu() - self.cpu0
        self.values["head_cpu"] = self.bed.cpu(self.place) - self.head0
        assert self.bed.groups is not None
        parts: dict[str, float] = {}
        for pid in self.bed.groups.pids(self.place):
            seen = process_cpu(pid)
            if seen is not None and pid not in self.bed.daemons:
                kind = kind_of(seen[0])
                parts[kind] = parts.get(kind, 0.0) + seen[1]
                parts[f"{kind} processes"] = parts.get(f"{kind} processes", 0) + 1
        used = sum(value for key, value in parts.items() if not key.endswith(" processes"))
        parts["exited"] = max(0.0, self.values["head_cpu"] - used)
        self.parts = {key: round(value, 3) for key, value in parts.items()}

    def dashboard(self, url: str) -> None:
        wait_for_dashboard(url, self.netns)
        self.values["dashboard"] = time.monotonic() - self.t0

    def stopping(self) -> None:
        self.t1 = time.monotonic()

    def done(self) -> Measurement:
        stop = self.bed.wait_until_clean(self.t1)
        return Measurement(start=self.values["start"], dashboard=self.values["dashboard"],
                           stop=stop, cpu_start=self.values["cpu_start"],
                           cpu=self.bed.cpu() - self.cpu0, head_cpu=self.values["head_cpu"],
                           head_parts=self.parts)


def read_ready(process: subprocess.Popen[str], log: Path) -> str:
    """The dashboard URL from a client's READY line; what went wrong otherwise."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("READY "):
            return line.split()[1]
    code = process.wait()
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"exited {code} before its workers were connected:\n{tail}")


def hostfile(bed: Bed, home: Path) -> Path:
    path = home / "hostfile"
    path.write_text("".join(f"{node.hostname}\n" for node in bed.compute))
    return path


# -- our start-dask-cluster ------------------------------------------------------------------
def daskhpc(bed: Bed, place: Node, env: dict[str, str], *options: str) -> Measurement:
    installed_home(Path(env["HOME"]))
    timing = Timing(bed, place)
    result = bed.run(place, [PYTHON, "-m", "daskhpc", "start", *WORKER_SIZE, *options], env)
    timing.ready()
    if result.returncode != 0:
        raise RuntimeError(f"start-dask-cluster failed: {result.stderr[-2000:]}")
    match = re.search(r"dashboard: +(\S+)", result.stdout)
    if match is None:
        raise RuntimeError(f"no dashboard line in: {result.stdout}")
    timing.dashboard(match.group(1))
    timing.stopping()
    result = bed.run(place, [PYTHON, "-m", "daskhpc", "stop"], env)
    if result.returncode != 0:
        raise RuntimeError(f"stop-dask-cluster failed: {result.stderr[-2000:]}")
    return timing.done()


def ssh_launcher(bed: Bed, place: Node, home: Path, *options: str) -> Measurement:
    return daskhpc(bed, place, bed.env(home), "--launcher", "ssh",
                   "--hostfile", str(hostfile(bed, home)), *options)


def ssh_launcher_sntrup(bed: Bed, place: Node, home: Path) -> Measurement:
    """The ssh launcher with OpenSSH 9.2's own preferred key exchange (sntrup761x25519), as
    before the launcher preferred curve25519: the first -o given wins over the launcher's."""
    kex = "sntrup761x25519-sha512@openssh.com,curve25519-sha256"
    env = bed.env(home, DASKHPC_SSH=f"{bed.net.ssh_command} -o KexAlgorithms={kex}")
    return daskhpc(bed, place, env, "--launcher", "ssh", "--hostfile", str(hostfile(bed, home)))


def mpi_launcher(bed: Bed, place: Node, home: Path, *options: str) -> Measurement:
    return daskhpc(bed, place, bed.env(home), "--launcher", "mpi",
                   "--hostfile", str(hostfile(bed, home)), *options)


def srun_launcher(bed: Bed, place: Node, home: Path, *options: str) -> Measurement:
    with allocation(bed, place, home) as slurm_env:
        return daskhpc(bed, place, bed.env(home, **slurm_env), "--launcher", "srun", *options)


# -- our Python API -----------------------------------------------------------------------------
# A notebook's kernel: daskhpc imported in an earlier cell, then the cell that starts the
# cluster; the bench says when (the "go" line), so only that cell is timed.
HPCCLUSTER = """
import sys
from daskhpc import HPCCluster
print("IMPORTED", flush=True)
sys.stdin.readline()
cluster = HPCCluster(launcher="ssh", hostfile=sys.argv[1], workers_per_node=1,
                     threads_per_worker=2)
assert len(cluster.scheduler_info["workers"]) == int(sys.argv[2])
print("READY", cluster.dashboard_link, flush=True)
sys.stdin.readline()
cluster.close()
"""


def python_api(bed: Bed, place: Node, home: Path) -> Measurement:
    """`HPCCluster(...)` (the same cluster as ssh_launcher), timed from the call until it returns
    with every worker connected; stop = `close()` until no process is left."""
    log = home / "client.log"
    installed_home(home)
    with open(log, "w") as errors:
        client = bed.popen(place, [PYTHON, "-c", HPCCLUSTER, str(hostfile(bed, home)),
                                   str(bed.count)], bed.env(home), stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=errors)
        with killed_at_exit(client):
            assert client.stdout is not None and client.stdin is not None
            if client.stdout.readline().strip() != "IMPORTED":
                raise RuntimeError(f"could not import daskhpc: {log.read_text()[-2000:]}")
            timing = Timing(bed, place)
            client.stdin.write("go\n")
            client.stdin.flush()
            return ready_to_clean(timing, client, log, send_line)


def ready_to_clean(timing: Timing, client: subprocess.Popen[str], log: Path,
                   stop: Callable[[subprocess.Popen[str]], None],
                   helpers: Sequence[subprocess.Popen[str]] = ()) -> Measurement:
    """From the client's READY line until no process is left: what every client-driven
    variant times the same way; `stop` asks the client (and its `helpers`) to end."""
    url = read_ready(client, log)
    timing.ready()
    timing.dashboard(url)
    timing.stopping()
    stop(client)
    for process in (client, *helpers):
        process.wait(timeout=120)
    return timing.done()


@contextlib.contextmanager
def killed_at_exit(*processes: subprocess.Popen[str]) -> Iterator[None]:
    """Whatever happens in the block, none of `processes` outlives it."""
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


# -- the upstream tools ------------------------------------------------------------------------
def client_run(bed: Bed, place: Node, home: Path, argv: list[str], env: dict[str, str],
               stop: Callable[[subprocess.Popen[str]], None],
               launch_first: Callable[[], list[subprocess.Popen[str]]] = list) -> Measurement:
    """Time a client process that prints READY once its workers are connected, then `stop`;
    `launch_first` starts what the client connects to (inside the timing)."""
    log = home / "client.log"
    with open(log, "w") as errors:
        timing = Timing(bed, place)
        helpers = launch_first()
        client = bed.popen(place, argv, env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=errors)
        with killed_at_exit(client, *helpers):
            return ready_to_clean(timing, client, log, stop, helpers)


def send_line(process: subprocess.Popen[str]) -> None:
    stdin: Optional[IO[str]] = process.stdin
    assert stdin is not None
    stdin.write("\n")
    stdin.close()


def sshcluster(bed: Bed, place: Node, home: Path) -> Measurement:
    hosts = [place.hostname, *(node.hostname for node in bed.compute)]
    argv = [PYTHON, "-c", SSHCLUSTER, str(bed.net.workdir / "client_key"), PYTHON,
            str(bed.count), *hosts]
    return client_run(bed, place, home, argv, bed.env(home), send_line)


def dask_mpi(bed: Bed, place: Node, home: Path) -> Measurement:
    """mpirun -np N+1 dask-mpi: rank 0 (the scheduler) on the start place, a worker per node."""
    hosts = home / "mpi_hosts"
    slots = {node.hostname: 1 for node in bed.compute}
    slots[place.hostname] = slots.get(place.hostname, 0) + 1
    order = [place.hostname] + [host for host in slots if host != place.hostname]
    hosts.write_text("".join(f"{host} slots={slots[host]}\n" for host in order))
    scheduler_file = home / "dask-mpi.json"
    env = bed.env(home)

    def mpirun() -> list[subprocess.Popen[str]]:
        with open(home / "mpirun.log", "w") as log:
            return [bed.popen(place, [
                "mpirun", "-np", str(bed.count + 1), "--hostfile", str(hosts), DASK_MPI,
                "--scheduler-file", str(scheduler_file), "--interface", "eth0",
                "--nthreads", "2", "--local-directory", "/tmp", "--dashboard-address", ":0"],
                env, stdout=log, stderr=subprocess.STDOUT)]

    argv = [PYTHON, "-c", DASK_MPI_CLIENT, str(scheduler_file), str(bed.count)]
    return client_run(bed, place, home, argv, env, send_line, launch_first=mpirun)


def slurm_runner(bed: Bed, place: Node, home: Path) -> Measurement:
    """`srun -n N+2` of a SLURMRunner script inside `salloc -N N` run on the start place."""
    layout = home / "slurm_hosts"  # scheduler, client and a worker on node1, a worker elsewhere
    first = bed.compute[0].hostname
    layout.write_text("".join(f"{host}\n" for host in
                              [first, first, *(node.hostname for node in bed.compute)]))
    stop_file = home / "stop"
    with allocation(bed, place, home) as slurm_env:
        env = bed.env(home, **slurm_env, SLURM_HOSTFILE=str(layout))
        argv = ["srun", f"--ntasks={bed.count + 2}", "--distribution=arbitrary", "--overcommit",
                "--cpu-bind=none", PYTHON, "-c", SLURM_RUNNER, str(home / "scheduler.json"),
                str(bed.count), str(stop_file)]
        return client_run(bed, place, home, argv, env, lambda _: stop_file.touch())


@contextlib.contextmanager
def allocation(bed: Bed, place: Node, home: Path) -> Iterator[dict[str, str]]:
    """`salloc -N N` held open from `place`; yields the job's SLURM_* variables. Allocating is
    not timed (it is Slurm's work, the same for every tool)."""
    assert bed.slurm is not None
    env_file = home / "allocation.env"
    # The job's shell holds the allocation until its stdin closes.
    hold = 'env > "$0.part" && mv "$0.part" "$0" && exec cat >/dev/null'
    holder = bed.popen(place, ["salloc", f"--nodes={bed.count}", "sh", "-c", hold,
                               str(env_file)], bed.env(home), group=SLURM_GROUP,
                       stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not env_file.exists():
            if holder.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"salloc --nodes={bed.count} gave no allocation")
            time.sleep(0.05)
        yield dict(line.split("=", 1) for line in env_file.read_text().splitlines()
                   if line.startswith("SLURM_") and "=" in line)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            holder.wait(timeout=60)
        if holder.poll() is None:
            holder.kill()
            holder.wait()


Variant = Callable[[Bed, Node, Path], Measurement]

VARIANTS: dict[str, Variant] = {
    "ssh": ssh_launcher,
    "srun": srun_launcher,
    "mpi": mpi_launcher,
    "sshcluster": sshcluster,
    "dask-mpi": dask_mpi,
    "slurmrunner": slurm_runner,
    "ssh-sntrup": ssh_launcher_sntrup,  # only on request: the key-exchange comparison
    "python-api": python_api,  # only on request: start_stop.py compares it with "ssh"
}
DEFAULT = ("ssh", "srun", "mpi", "sshcluster", "dask-mpi", "slurmrunner")
