"""Start/stop benchmark of the mpi and srun launchers beside plain dask-mpi, on the same nodes.

    sudo .venv/bin/python bench/mpi_srun.py [--rounds 3]

Builds the test Slurm (tests/testbed/slurm.py: compute nodes node1..node3, login node node4;
needs root) and runs, in rotating order each round, 1 worker per node on node1..node3:
  - mpi:  `start-dask-cluster --launcher mpi --hostfile` run in node1 (Open MPI over the
    nodes' ssh), TLS (the default) and --no-tls; timed from launching the command until it
    returns (all workers connected), then `stop-dask-cluster` until it returns and no process
    is left on any node;
  - srun: the same inside `salloc -N3` from the login node (one srun step, TLS), timed inside the
    allocation, so Slurm's own allocation time is not counted;
  - dask-mpi: `mpirun -np 4 dask-mpi --scheduler-file` in node1 (rank 0 the scheduler on node1,
    ranks 1-3 workers on node1..node3, tcp: dask-mpi has no TLS flags), timed from launching
    mpirun until a client sees 3 workers; then `client.shutdown()` until mpirun exits and no
    process is left.
Every variant pays for starting Python and importing distributed. Prints a JSON summary (medians).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from testbed.mpi import across_nodes_env, run_as_root_env  # noqa: E402
from testbed.nodes import NodeBed, missing_requirements  # noqa: E402
from testbed.slurm import SlurmBed  # noqa: E402
from testbed.slurm import missing_requirements as slurm_missing  # noqa: E402

PYTHON = str(REPO / ".venv" / "bin" / "python")
DASK_MPI = str(REPO / ".venv" / "bin" / "dask-mpi")

WAIT_FOR_3 = """
import os, sys, time
from dask.distributed import Client
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
client = Client(scheduler_file=sys.argv[1], timeout=60)
client.wait_for_workers(3, timeout=120)
print("READY", flush=True)
sys.stdin.readline()
client.shutdown()
"""

# Inside `salloc -N3`: start, stop, and the two durations (seconds) on one line.
SRUN_JOB = """#!/bin/sh
set -e
t0=$(date +%s.%N)
{python} -m daskhpc start --launcher srun >/dev/null 2>start.err
t1=$(date +%s.%N)
{python} -m daskhpc stop >/dev/null
t2=$(date +%s.%N)
echo "$t0 $t1 $t2" > times
"""


def user_env(home: Path, bed: NodeBed) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
            "PYTHONPATH": str(REPO / "src"), "DASKHPC_SSH": bed.ssh_command,
            **across_nodes_env(bed)}


def run_mpi(bed: NodeBed, home: Path, *extra: str) -> tuple[float, float]:
    env = user_env(home, bed)
    hostfile = home / "hostfile"
    hostfile.write_text("node1\nnode2\nnode3\n")
    node = bed.nodes[0]
    started = time.monotonic()
    result = node.run([PYTHON, "-m", "daskhpc", "start", "--launcher", "mpi", "--hostfile",
                       str(hostfile), "--workers-per-node", "1", *extra], env=env)
    start_time = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    started = time.monotonic()
    result = node.run([PYTHON, "-m", "daskhpc", "stop"], env=env)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return start_time, bed.wait_until_gone(PYTHON, started)


def run_srun(slurm: SlurmBed, home: Path) -> tuple[float, float]:
    job = home / "job.sh"
    job.write_text(SRUN_JOB.format(python=shlex.quote(PYTHON)))
    job.chmod(0o755)
    env = {"HOME": str(home), "PYTHONPATH": str(REPO / "src"), "LANG": "C.UTF-8"}
    result = slurm.run(["salloc", "-N3", "--chdir", str(home), str(job)], env=env, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(result.stderr + (home / "start.err").read_text())
    t0, t1, t2 = (float(value) for value in (home / "times").read_text().split())
    slurm.nodes.wait_until_gone(PYTHON, time.monotonic())
    return t1 - t0, t2 - t1


def run_dask_mpi(bed: NodeBed, home: Path) -> tuple[float, float]:
    env = {**user_env(home, bed)}
    hostfile = home / "mpi_hosts"
    hostfile.write_text("node1 slots=2\nnode2 slots=1\nnode3 slots=1\n")
    scheduler_file = home / "dask-mpi.json"
    scheduler_file.unlink(missing_ok=True)
    node = bed.nodes[0]
    started = time.monotonic()
    mpirun = node.popen(["mpirun", "-np", "4", "--hostfile", str(hostfile), DASK_MPI,
                         "--scheduler-file", str(scheduler_file), "--interface", "eth0",
                         "--nthreads", "1", "--local-directory", "/tmp", "--no-dashboard"],
                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    waiter = node.popen([PYTHON, "-c", WAIT_FOR_3, str(scheduler_file)], env=env,
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert waiter.stdout is not None and waiter.stdin is not None
    if waiter.stdout.readline().strip() != "READY":
        mpirun.kill()
        raise RuntimeError("dask-mpi workers did not come up")
    start_time = time.monotonic() - started
    stopped = time.monotonic()
    waiter.stdin.write("\n")
    waiter.stdin.close()
    waiter.wait(timeout=60)
    mpirun.wait(timeout=60)
    return start_time, bed.wait_until_gone(PYTHON, stopped)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    reason = missing_requirements() or slurm_missing()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="bench-mpi-srun-"))
    bed = NodeBed(workdir / "nodes", count=4).start()
    slurm = SlurmBed(bed, workdir / "slurm").start()
    os.environ.update(run_as_root_env())
    variants = {
        "mpi (tls)": lambda home: run_mpi(bed, home),
        "mpi (--no-tls)": lambda home: run_mpi(bed, home, "--no-tls"),
        "srun (tls)": lambda home: run_srun(slurm, home),
        "plain dask-mpi (tcp)": lambda home: run_dask_mpi(bed, home),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    names = list(variants)
    try:
        for round_number in range(args.rounds):
            order = names[round_number % len(names):] + names[:round_number % len(names)]
            for name in order:
                home = workdir / f"home-{round_number}-{names.index(name)}"
                home.mkdir()
                times[name].append(variants[name](home))
                print(f"round {round_number + 1} {name}: start {times[name][-1][0]:.2f} s, "
                      f"stop {times[name][-1][1]:.2f} s", file=sys.stderr)
    finally:
        slurm.stop()
        bed.stop()
    load = os.getloadavg()[0]
    summary = {name: {"start_median_s": round(statistics.median(t[0] for t in runs), 2),
                      "stop_median_s": round(statistics.median(t[1] for t in runs), 2),
                      "runs": len(runs)} for name, runs in times.items()}
    print(json.dumps({"load_after": round(load, 1), "results": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
