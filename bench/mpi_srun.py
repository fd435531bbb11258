"""Start/stop benchmark of the mpi and srun launchers beside plain dask-mpi, on the same nodes.

    sudo .venv/bin/python bench/mpi_srun.py [--rounds 3]

Builds the bench's bed (bench/harness.py: compute nodes node1..node3 with sshd and slurmd, a
login host; needs root) and runs, in rotating order each round, 1 worker per node:
  - mpi: `start-dask-cluster --launcher mpi --hostfile` run in node1 (Open MPI over the nodes'
    ssh), TLS (the default) and --no-tls;
  - srun: `start-dask-cluster --launcher srun` inside `salloc -N3` from the login host (TLS),
    timed inside the allocation, so Slurm's own allocation time is not counted;
  - dask-mpi: `mpirun -np 4 dask-mpi --scheduler-file` in node1 (rank 0 the scheduler, tcp:
    dask-mpi has no TLS flags), until a client sees 3 workers; stop = `client.shutdown()`.
Timing is bench/scale.py's (bench/variants.py). Prints a JSON summary (medians).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from harness import Bed, missing_requirements, rotated
from variants import Measurement, dask_mpi, mpi_launcher, srun_launcher


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    reason = missing_requirements()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    times: dict[str, list[Measurement]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-mpi-srun-") as workdir:
        bed = Bed(Path(workdir), nodes=3).start()
        node1, login = bed.place("node1"), bed.place("login")
        variants = {
            "mpi (tls)": lambda home: mpi_launcher(bed, node1, home),
            "mpi (--no-tls)": lambda home: mpi_launcher(bed, node1, home, "--no-tls"),
            "srun (tls)": lambda home: srun_launcher(bed, login, home),
            "plain dask-mpi (tcp)": lambda home: dask_mpi(bed, node1, home),
        }
        times = {name: [] for name in variants}
        try:
            for round_number in range(args.rounds):
                for name in rotated(list(variants), round_number):
                    home = Path(workdir) / f"home-{round_number}-{list(variants).index(name)}"
                    home.mkdir()
                    times[name].append(variants[name](home))
                    print(f"round {round_number + 1} {name}: start {times[name][-1].start:.2f} "
                          f"s, stop {times[name][-1].stop:.2f} s", file=sys.stderr)
        finally:
            bed.stop()
    summary = {name: {"start_median_s": round(statistics.median(m.start for m in runs), 2),
                      "stop_median_s": round(statistics.median(m.stop for m in runs), 2),
                      "runs": len(runs)} for name, runs in times.items()}
    print(json.dumps({"load_after": round(os.getloadavg()[0], 1), "results": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
