"""Running start-dask-cluster inside real Slurm jobs of the test Slurm, and checking for leftovers.

A job script starts the cluster, runs a computation on every worker and writes what it saw to
a JSON file, then (salloc) stops the cluster or (sbatch) keeps it running until the test cancels
the job. Users get their own HOME on the shared filesystem.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

from cluster_helpers import PYTHON, REPO
from hostlist import expand_hostlist
from testbed.mpi import run_as_root_env
from testbed.scratch import cluster_ids, scratch_left
from testbed.slurm import SlurmBed

# What the environment's .pth line runs in every interpreter (the dev venv has no such line).
CLIENT_SETTINGS = "import daskhpc.client_config; daskhpc.client_config.apply()\n"

# Runs one task on every worker (pinned to it) and records where each ran; connects the way a
# notebook does, with the default scheduler file and the client TLS settings start wrote.
COMPUTE = CLIENT_SETTINGS + """
import json, os, socket, sys
from dask.distributed import Client
with Client(scheduler_file=os.path.expanduser("~/dask-scheduler.json"), timeout=30) as client:
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    futures = [client.submit(lambda i: (i * i, socket.gethostname()), i, workers=[w], pure=False)
               for i, w in enumerate(workers)]
    results = client.gather(futures)
print(json.dumps({"workers": workers, "hostnames": sorted(h for _, h in results),
                  "squares": sum(s for s, _ in results)}))
"""


class SlurmUser:
    """A user of the test Slurm with a private HOME; submits jobs from the 'login node'."""

    def __init__(self, slurm: SlurmBed, home: Path) -> None:
        self.slurm = slurm
        self.home = home
        self.home.mkdir(parents=True, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "PYTHONPATH": str(REPO / "src"), "LANG": "C.UTF-8",
                **run_as_root_env()}

    def script(self, start_args: str, then: str, start_path: str = "") -> Path:
        """A job script: start the cluster (with PATH=`start_path` if given), compute, record
        the result, then `then`."""
        (self.home / "compute.py").write_text(COMPUTE)
        path = self.home / "job.sh"
        start = f"{shlex.quote(PYTHON)} -m daskhpc start {start_args}"
        if start_path:
            start = f"PATH={shlex.quote(start_path)} {start}"
        path.write_text(
            "#!/bin/sh\nset -e\ncd \"$HOME\"\n"
            "echo \"$SLURM_JOB_NODELIST\" > nodelist\n"
            f"{start} > start.out 2> start.err\n"
            f"{shlex.quote(PYTHON)} compute.py > result.json\n"
            f"{then}\n"
        )
        path.chmod(0o755)
        return path

    def salloc(self, nodes: int, start_args: str, timeout: float = 240,
               start_path: str = "") -> dict[str, Any]:
        """Start, compute and stop inside `salloc -N nodes`; returns the computation's result."""
        stop = f"{shlex.quote(PYTHON)} -m daskhpc stop > stop.out 2> stop.err"
        job = self.script(start_args, stop, start_path)
        result = self.slurm.run(["salloc", f"-N{nodes}", str(job)], env=self.env,
                                timeout=timeout)
        assert result.returncode == 0, self.logs(result.stderr)
        return self.result()

    def sbatch(self, nodes: int, start_args: str, *options: str) -> str:
        """Submit a job that starts a cluster and keeps it (and the job) running; its id."""
        job = self.script(start_args, "touch ready; exec sleep 3600")
        result = self.slurm.run(["sbatch", "--parsable", f"-N{nodes}",
                                 f"--output={self.home / 'job.out'}", *options, str(job)],
                                env=self.env)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().split(";")[0]

    def wait_ready(self, job: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not (self.home / "ready").exists():
            state = self.slurm.run(["squeue", "-h", "-j", job, "-o", "%T"]).stdout.strip()
            assert state in ("PENDING", "CONFIGURING", "RUNNING"), self.logs(f"job {state}")
            assert time.monotonic() < deadline, self.logs("cluster not ready in time")
            time.sleep(0.3)
        return self.result()

    def allocated(self) -> list[str]:
        """The nodes Slurm gave the last job (any free ones: not always node1 first)."""
        return sorted(expand_hostlist((self.home / "nodelist").read_text().strip()))

    def result(self) -> dict[str, Any]:
        return json.loads((self.home / "result.json").read_text())

    def start_output(self) -> str:
        return (self.home / "start.err").read_text()

    def logs(self, headline: str) -> str:
        parts = [headline]
        for name in ("job.out", "start.out", "start.err", "stop.err"):
            path = self.home / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text()[-3000:]}")
        return "\n".join(parts)

    def leftovers(self, scratch: bool = True) -> dict[str, list[str]]:
        """This user's Dask processes anywhere (on every node and on the login node), and their
        clusters' scratch directories (unless `scratch=False`)."""
        found = {host: procs for host, procs in self.slurm.nodes.processes(PYTHON).items()
                 if procs}
        login = _processes_mentioning(str(self.home))
        if login:
            found["login"] = login
        if scratch:
            for place, directories in scratch_left(cluster_ids(self.home)).items():
                found.setdefault(place, []).extend(directories)
        return found

    def wait_until_clean(self, timeout: float = 60, scratch: bool = True) -> dict[str, list[str]]:
        deadline = time.monotonic() + timeout
        while (found := self.leftovers(scratch)) and time.monotonic() < deadline:
            time.sleep(0.2)
        return found


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name} {cmdline.strip()}")
    return found
