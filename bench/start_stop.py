"""Start/stop benchmark: start-dask-cluster vs distributed's SSHCluster on 3 simulated nodes.

    sudo .venv/bin/python bench/start_stop.py [--rounds 5]

Builds the bench's bed (bench/harness.py: simulated nodes with sshd and Slurm; needs root), then
runs, in rotating order each round, from inside node1 as a user would:
  - daskhpc (TLS, the default) and daskhpc --no-tls: `start-dask-cluster --hostfile` (3 nodes,
    1 worker per node);
  - SSHCluster (asyncssh, tcp, same nodes, same worker sizing);
  - daskhpc_python: the same cluster as daskhpc_tls from `HPCCluster(...)`, the Python API, in a
    Python that has imported daskhpc already (a notebook's earlier cell); start = the call until
    it returns with every worker connected (python_api_vs_cli compares it with daskhpc_tls).
Timing and CPU accounting are bench/scale.py's (bench/variants.py): start = launching until all
workers are connected; dashboard = until the printed dashboard answers; stop = until no process
is left on any node; CPU = every node's cgroup v2, so the other load of the machine is not
counted. Prints a JSON summary (medians, and tls_overhead = TLS start / no-TLS start - 1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Optional

from harness import Bed, missing_requirements, rotated
from variants import python_api, ssh_launcher, sshcluster

KEYS = {"start": "start", "start_cpu": "cpu_start", "stop": "stop", "dashboard": "dashboard"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variants", default="daskhpc_tls,daskhpc_no_tls,sshcluster,"
                        "daskhpc_python", help="which of them, comma-separated")
    args = parser.parse_args()
    reason = missing_requirements()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="daskhpc-bench-") as workdir:
        bed = Bed(Path(workdir), nodes=3).start()
        try:
            node = bed.place("node1")
            variants = {
                "daskhpc_tls": lambda home: ssh_launcher(bed, node, home),
                "daskhpc_no_tls": lambda home: ssh_launcher(bed, node, home, "--no-tls"),
                "sshcluster": lambda home: sshcluster(bed, node, home),
                "daskhpc_python": lambda home: python_api(bed, node, home),
            }
            variants = {name: variants[name] for name in args.variants.split(",")}
            results: dict[str, dict[str, list[float]]] = {
                name: {key: [] for key in KEYS} for name in variants}
            homes = iter(range(10**6))

            def fresh_home() -> Path:
                home = Path(workdir) / f"home-{next(homes)}"
                home.mkdir()
                return home

            ssh_launcher(bed, node, fresh_home())  # warm the page cache once
            for round_number in range(args.rounds):
                for name in rotated(list(variants), round_number):
                    measured = variants[name](fresh_home()).as_dict()
                    for key, field in KEYS.items():
                        results[name][key].append(measured[field])  # type: ignore[arg-type]
                    print(f"round {round_number + 1} {name}: {measured}", file=sys.stderr)
        finally:
            bed.stop()
    medians = {name: {key: statistics.median(values) for key, values in data.items()}
               for name, data in results.items()}

    def ratio(ours: str, theirs: str, key: str = "start") -> Optional[float]:
        if ours not in medians or theirs not in medians:
            return None  # not run (--variants)
        return round(medians[ours][key] / medians[theirs][key], 3)

    tls = ratio("daskhpc_tls", "daskhpc_no_tls")
    print(json.dumps({
        "rounds": args.rounds, "runs": results, "median": medians,
        "start_ratio_tls_vs_sshcluster": ratio("daskhpc_tls", "sshcluster"),
        "start_ratio_no_tls_vs_sshcluster": ratio("daskhpc_no_tls", "sshcluster"),
        "dashboard_ratio_tls_vs_sshcluster": ratio("daskhpc_tls", "sshcluster", "dashboard"),
        "start_cpu_ratio_tls_vs_sshcluster": ratio("daskhpc_tls", "sshcluster", "start_cpu"),
        "tls_overhead": None if tls is None else round(tls - 1, 3),
        "python_api_vs_cli": ratio("daskhpc_python", "daskhpc_tls"),
        "python_api_cpu_vs_cli": ratio("daskhpc_python", "daskhpc_tls", "start_cpu"),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
