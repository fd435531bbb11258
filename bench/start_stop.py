"""Start/stop benchmark: start-dask-cluster vs distributed's SSHCluster on 3 simulated nodes.

    sudo .venv/bin/python bench/start_stop.py [--rounds 5]

Builds the test bed's simulated nodes (network namespaces + sshd; needs root), then runs, in
alternating order each round, from inside node1 as a user would:
  - daskhpc (TLS, the default) and daskhpc --no-tls: `start-dask-cluster --hostfile` (3 nodes,
    1 worker per node), timed from launching the command until it returns, i.e. until all
    workers are connected; then `stop-dask-cluster`, timed until it returns and checked to leave
    no process on any node;
  - SSHCluster (asyncssh, tcp, same nodes, same worker sizing), timed from launching a Python
    process that creates it until `wait_for_workers(3)` returns; then `close()`, timed until no
    process of it is left on any node.
Both sides pay for starting Python and importing distributed. Besides wall time, each start is
measured in CPU seconds: the bench, the nodes' sshd and everything they start run in one cpuacct
cgroup (v1) of their own, so the CPU used by either side until all workers are connected is
counted whatever else loads the machine (wall time on a shared 2-core machine mostly measures
the other load). Prints a JSON summary (medians).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from testbed.nodes import Node, NodeBed, missing_requirements  # noqa: E402

PYTHON = str(REPO / ".venv" / "bin" / "python")

SSHCLUSTER = """
import sys, time
from dask.distributed import Client, SSHCluster
key, python = sys.argv[1], sys.argv[2]
cluster = SSHCluster(
    ["node1", "node1", "node2", "node3"],
    connect_options={"known_hosts": None, "client_keys": [key], "username": "root"},
    worker_options={"nthreads": 2, "local_directory": "/tmp"},
    scheduler_options={"port": 0, "dashboard_address": ":0"},
    remote_python=python,
)
client = Client(cluster)
client.wait_for_workers(3)
print("READY", flush=True)
sys.stdin.readline()
client.close()
cluster.close()
print("CLOSED", flush=True)
"""


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


class CpuMeter:
    """CPU time of a set of processes and all their descendants (a cpuacct cgroup)."""

    def __init__(self, pids: list[int]) -> None:
        self.group = CPUACCT / f"daskhpc-bench-{os.getpid()}"
        self.group.mkdir()
        for pid in pids:
            (self.group / "tasks").write_text(f"{pid}\n")

    def seconds(self) -> float:
        return int((self.group / "cpuacct.usage").read_text()) / 1e9

    def close(self) -> None:
        for pid in (self.group / "tasks").read_text().split():
            with contextlib.suppress(OSError):
                (CPUACCT / "tasks").write_text(f"{pid}\n")
        self.group.rmdir()


def wait_for_dashboard(url: str, timeout: float = 30.0) -> None:
    """Until the dashboard page answers 200 (our scheduler serves a 503 "starting" page first)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as error:
            if error.code != 503 or time.monotonic() > deadline:
                raise
        time.sleep(0.02)


def run_daskhpc(node: Node, bed: NodeBed, meter: CpuMeter, env: dict[str, str],
                hostfile: Path, *extra: str) -> tuple[float, float, float, float]:
    cpu = meter.seconds()
    started = time.monotonic()
    result = node.run([PYTHON, "-m", "daskhpc", "start", "--hostfile", str(hostfile), *extra],
                      env=env)
    start_time = time.monotonic() - started
    cpu = meter.seconds() - cpu
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    match = re.search(r"dashboard: +(\S+)", result.stdout)
    if match is None:
        raise RuntimeError(f"no dashboard line in: {result.stdout}")
    wait_for_dashboard(match.group(1))
    dashboard_time = time.monotonic() - started
    started = time.monotonic()
    result = node.run([PYTHON, "-m", "daskhpc", "stop"], env=env)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return start_time, cpu, bed.wait_until_gone(PYTHON, started), dashboard_time


def run_sshcluster(node: Node, bed: NodeBed, meter: CpuMeter,
                   env: dict[str, str]) -> tuple[float, float, float, float]:
    cpu = meter.seconds()
    started = time.monotonic()
    process = node.popen([PYTHON, "-c", SSHCLUSTER, str(bed.workdir / "client_key"), PYTHON],
                         env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    assert process.stdout is not None and process.stdin is not None
    if process.stdout.readline().strip() != "READY":
        raise RuntimeError(f"SSHCluster did not start (exit {process.wait()})")
    start_time = time.monotonic() - started
    cpu = meter.seconds() - cpu
    started = time.monotonic()
    process.stdin.write("\n")
    process.stdin.flush()
    process.wait(timeout=120)
    # SSHCluster's scheduler imports its dashboard before it listens: ready with the workers.
    return start_time, cpu, bed.wait_until_gone(PYTHON, started), start_time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    reason = missing_requirements()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="daskhpc-bench-"))
    bed = NodeBed(workdir / "nodes", count=3).start()
    meter = CpuMeter([os.getpid(), *(process.pid for process in bed._sshd)])
    try:
        home = workdir / "home"
        home.mkdir()
        hostfile = home / "hostfile"
        hostfile.write_text("node1\nnode2\nnode3\n")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "DASKHPC_SSH": bed.ssh_command,
               "PYTHONPATH": str(REPO / "src"), "LANG": "C.UTF-8"}
        node = bed.nodes[0]
        variants = {
            "daskhpc_tls": lambda: run_daskhpc(node, bed, meter, env, hostfile),
            "daskhpc_no_tls": lambda: run_daskhpc(node, bed, meter, env, hostfile, "--no-tls"),
            "sshcluster": lambda: run_sshcluster(node, bed, meter, env),
        }
        results: dict[str, dict[str, list[float]]] = {
            name: {"start": [], "start_cpu": [], "stop": [], "dashboard": []} for name in variants
        }
        run_daskhpc(node, bed, meter, env, hostfile)  # warm the page cache and bytecode once
        for round_number in range(args.rounds):
            order = list(variants)
            if round_number % 2:
                order.reverse()  # alternate, so drift in machine load hits both sides
            for name in order:
                start_time, cpu, stop_time, dashboard_time = variants[name]()
                results[name]["start"].append(round(start_time, 3))
                results[name]["start_cpu"].append(round(cpu, 3))
                results[name]["stop"].append(round(stop_time, 3))
                results[name]["dashboard"].append(round(dashboard_time, 3))
                print(f"round {round_number + 1} {name}: start {start_time:.2f} s "
                      f"({cpu:.2f} CPU s), dashboard {dashboard_time:.2f} s, "
                      f"stop {stop_time:.2f} s, "
                      f"load {os.getloadavg()[0]:.1f}", file=sys.stderr)
        medians = {name: {kind: statistics.median(values) for kind, values in data.items()}
                   for name, data in results.items()}
        summary = {
            "rounds": args.rounds,
            "runs": results,
            "median": medians,
            "start_ratio_tls_vs_sshcluster": round(
                medians["daskhpc_tls"]["start"] / medians["sshcluster"]["start"], 3),
            "start_ratio_no_tls_vs_sshcluster": round(
                medians["daskhpc_no_tls"]["start"] / medians["sshcluster"]["start"], 3),
            "dashboard_ratio_tls_vs_sshcluster": round(
                medians["daskhpc_tls"]["dashboard"] / medians["sshcluster"]["dashboard"], 3),
            "start_cpu_ratio_tls_vs_sshcluster": round(
                medians["daskhpc_tls"]["start_cpu"] / medians["sshcluster"]["start_cpu"], 3),
            "tls_overhead": round(
                medians["daskhpc_tls"]["start"] / medians["daskhpc_no_tls"]["start"] - 1, 3),
        }
        print(json.dumps(summary, indent=2))
    finally:
        meter.close()
        bed.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
