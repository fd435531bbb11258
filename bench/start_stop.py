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
  - daskhpc_python: `HPCCluster(hostfile=...)`, the Python API, in a Python process that has
    already imported it (as a notebook has by the cell that starts the cluster), timed from the
    call until it returns with every worker connected ("start"; "start_from_launch" adds the
    interpreter's start and `import distributed`); then `close()`, timed until no process of it
    is left on any node. Compared with daskhpc_tls, the same cluster from the command line.
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


HPCCLUSTER = """
import sys, time
launched = float(sys.argv[2])
from daskhpc import HPCCluster
called = time.time()
cluster = HPCCluster(hostfile=sys.argv[1])
ready = time.time()
assert len(cluster.scheduler_info["workers"]) == 3, cluster.scheduler_info
print("READY", ready - called, ready - launched, ready, cluster.dashboard_link, flush=True)
sys.stdin.readline()
cluster.close()
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
                hostfile: Path, *extra: str) -> dict[str, float]:
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
    return {"start": start_time, "start_cpu": cpu, "stop": bed.wait_until_gone(PYTHON, started),
            "dashboard": dashboard_time}


def run_sshcluster(node: Node, bed: NodeBed, meter: CpuMeter,
                   env: dict[str, str]) -> dict[str, float]:
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
    return {"start": start_time, "start_cpu": cpu, "stop": bed.wait_until_gone(PYTHON, started),
            "dashboard": start_time}


def run_python_api(node: Node, bed: NodeBed, meter: CpuMeter, env: dict[str, str],
                   hostfile: Path) -> dict[str, float]:
    cpu = meter.seconds()
    process = node.popen([PYTHON, "-c", HPCCLUSTER, str(hostfile), str(time.time())], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None and process.stdin is not None
    line = process.stdout.readline().split()
    if not line or line[0] != "READY":
        raise RuntimeError(f"HPCCluster did not start (exit {process.wait()})")
    cpu = meter.seconds() - cpu
    start_time, from_launch, ready = float(line[1]), float(line[2]), float(line[3])
    wait_for_dashboard(line[4])
    dashboard_time = time.time() - ready + start_time  # from the call, as "start"
    started = time.monotonic()
    process.stdin.write("\n")
    process.stdin.flush()
    process.wait(timeout=120)
    return {"start": start_time, "start_from_launch": from_launch, "start_cpu": cpu,
            "stop": bed.wait_until_gone(PYTHON, started), "dashboard": dashboard_time}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variants", help="comma-separated subset of: daskhpc_tls, "
                        "daskhpc_no_tls, sshcluster, daskhpc_python (default: all)")
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
            "daskhpc_python": lambda: run_python_api(node, bed, meter, env, hostfile),
        }
        chosen = args.variants.split(",") if args.variants else list(variants)
        results: dict[str, dict[str, list[float]]] = {name: {} for name in chosen}
        run_daskhpc(node, bed, meter, env, hostfile)  # warm the page cache and bytecode once
        for round_number in range(args.rounds):
            order = list(chosen)
            if round_number % 2:
                order.reverse()  # alternate, so drift in machine load hits both sides
            for name in order:
                measured = variants[name]()
                for kind, value in measured.items():
                    results[name].setdefault(kind, []).append(round(value, 3))
                print(f"round {round_number + 1} {name}: start {measured['start']:.2f} s "
                      f"({measured['start_cpu']:.2f} CPU s), dashboard "
                      f"{measured['dashboard']:.2f} s, stop {measured['stop']:.2f} s, "
                      f"load {os.getloadavg()[0]:.1f}", file=sys.stderr)
        medians = {name: {kind: statistics.median(values) for kind, values in data.items()}
                   for name, data in results.items()}
        summary: dict[str, object] = {"rounds": args.rounds, "runs": results, "median": medians}
        # name: (numerator variant, its measure, denominator variant, its measure)
        ratios = {
            "start_ratio_tls_vs_sshcluster": ("daskhpc_tls", "start", "sshcluster", "start"),
            "start_ratio_no_tls_vs_sshcluster": ("daskhpc_no_tls", "start", "sshcluster",
                                                 "start"),
            "dashboard_ratio_tls_vs_sshcluster": ("daskhpc_tls", "dashboard", "sshcluster",
                                                  "dashboard"),
            "start_cpu_ratio_tls_vs_sshcluster": ("daskhpc_tls", "start_cpu", "sshcluster",
                                                  "start_cpu"),
            "tls_overhead": ("daskhpc_tls", "start", "daskhpc_no_tls", "start"),
            "python_api_vs_cli": ("daskhpc_python", "start", "daskhpc_tls", "start"),
            "python_api_from_launch_vs_cli": ("daskhpc_python", "start_from_launch",
                                              "daskhpc_tls", "start"),
            "python_api_cpu_vs_cli": ("daskhpc_python", "start_cpu", "daskhpc_tls", "start_cpu"),
        }
        for ratio, (top, top_kind, bottom, bottom_kind) in ratios.items():
            if top in medians and bottom in medians:
                value = medians[top][top_kind] / medians[bottom][bottom_kind]
                summary[ratio] = round(value - 1 if ratio == "tls_overhead" else value, 3)
        print(json.dumps(summary, indent=2))
    finally:
        meter.close()
        bed.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
