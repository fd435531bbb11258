"""Node agent: starts one node's workers, records them, and makes sure they end.

`python -m daskhpc.cluster.agent CLUSTER_DIR HOST` runs on each node (locally or under ssh -tt).
It is a child subreaper, so a worker process orphaned by its nanny becomes its child, and it exits
only when every process under it is gone; then it marks the node's record file finished. It ends
its workers on a "stop" line or EOF on stdin, SIGTERM, SIGHUP (its ssh session ended) or SIGINT;
its workers get SIGTERM if it is killed (PR_SET_PDEATHSIG). Standard library only, for a fast
start: each worker imports distributed itself.
"""

from __future__ import annotations

import errno
import getpass
import ipaddress
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from daskhpc.cluster.logs import log
from daskhpc.cluster.processes import (
    ProcessRecord,
    adopt_orphans,
    descendants,
    die_with_parent,
    record,
    send_signal,
    write_records,
)
from daskhpc.cluster.spec import ClusterSpec, NodeSpec, read_spec

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for the node's processes
RECORD_INTERVAL = 1.0  # how often to add new descendants (nanny-spawned workers) to the record


def scratch_base(local_directory: Optional[str]) -> Path:
    """Node-local scratch: --local-directory, else $TMPDIR, /scratch/$USER, /tmp; never home."""
    if local_directory:
        return Path(os.path.expandvars(local_directory)).expanduser()
    candidates = [os.environ.get("TMPDIR"), f"/scratch/{getpass.getuser()}", "/tmp"]
    for candidate in candidates:
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return Path(candidate)
    return Path("/tmp")


def worker_host(spec: ClusterSpec) -> list[str]:
    """How a worker picks its address: the interface, or the one that routes to the scheduler."""
    if spec.interface:
        return ["--interface", spec.interface]
    if ipaddress.ip_address(spec.scheduler_host).is_loopback:
        return ["--host", spec.scheduler_host]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((spec.scheduler_host, spec.scheduler_port))  # UDP: nothing is sent
        return ["--host", probe.getsockname()[0]]


def worker_argv(spec: ClusterSpec, node: NodeSpec, name: str, directory: Path) -> list[str]:
    argv = [
        spec.python, "-m", "distributed.cli.dask_worker", spec.scheduler_address,
        "--name", name,
        "--nthreads", str(node.threads_per_worker),
        "--memory-limit", str(node.memory_limit),
        "--local-directory", str(directory),
        "--death-timeout", f"{spec.death_timeout:g}",
        "--protocol", spec.protocol,
        "--no-dashboard",
        *worker_host(spec),
    ]
    if not spec.nanny:
        argv.append("--no-nanny")
    if spec.worker_end_time is not None:
        argv += ["--lifetime", f"{max(1, int(spec.worker_end_time - time.time()))}s"]
    if spec.tls_dir:
        from daskhpc.cluster.security import load_cluster_tls

        argv += load_cluster_tls(Path(spec.tls_dir)).cli_args("worker")
    return argv


class NodeFailure(Exception):
    """Why this node cannot run its workers, in one line for the start command to show."""


class Agent:
    def __init__(self, spec: ClusterSpec, node: NodeSpec) -> None:
        self.spec = spec
        self.node = node
        self.record_file = Path(spec.cluster_dir) / "procs" / f"{node.host}.json"
        self.scratch = scratch_base(spec.local_directory) / f"daskhpc-{spec.cluster_id}-{node.host}"
        self.stop_requested = threading.Event()
        self.workers: list[subprocess.Popen[bytes]] = []
        self.records: dict[int, ProcessRecord] = {}

    def run(self) -> int:
        adopt_orphans()
        # SIGUSR1: the stop request mpirun forwards to every rank (launchers/mpi.py).
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGUSR1):
            signal.signal(signum, lambda *_: self.stop_requested.set())
        threading.Thread(target=self._watch_stdin, daemon=True).start()
        self.record_file.parent.mkdir(mode=0o700, exist_ok=True)
        self._remember(os.getpid(), "agent")
        try:
            self._start_workers()
            self._write_records()
            self._supervise()
        finally:
            self._end_all()
            shutil.rmtree(self.scratch, ignore_errors=True)
            self._write_records(finished=True)
        return 0

    def _watch_stdin(self) -> None:
        # EOF means "the launcher is gone" only when stdin comes from it (pipe or ssh tty);
        # launchers that give /dev/null (e.g. srun's other tasks) rely on signals instead.
        mode = os.fstat(sys.stdin.fileno()).st_mode
        from_launcher = stat.S_ISFIFO(mode) or sys.stdin.isatty()
        for line in sys.stdin:
            if line.strip() == "stop":
                self.stop_requested.set()
                return
        if from_launcher:
            self.stop_requested.set()

    @property
    def worker_env(self) -> dict[str, str]:
        method = self.spec.worker_start_method
        return {**os.environ, "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD": method}

    def _start_workers(self) -> None:
        for name in self.spec.worker_names(self.node):
            directory = self.scratch / name
            try:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as error:
                raise NodeFailure(f"cannot create the worker directory {directory} "
                                  f"({error.strerror}); give --local-directory a node-local "
                                  "directory that exists on every node") from None
            argv = worker_argv(self.spec, self.node, name, directory)
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=self.worker_env,
                                       preexec_fn=die_with_parent)
            self.workers.append(process)
            self._remember(process.pid, "worker")
        log("agent", f"{socket.gethostname()}: started {len(self.workers)} worker(s)", sys.stdout)

    def _supervise(self) -> None:
        next_record = time.monotonic() + RECORD_INTERVAL
        while not self.stop_requested.wait(0.05):
            if all(worker.poll() is not None for worker in self.workers):
                codes = [worker.returncode for worker in self.workers]
                print(f"daskhpc agent: all workers ended (exit codes {codes})", flush=True)
                return
            if time.monotonic() >= next_record:
                self._record_descendants()
                next_record = time.monotonic() + RECORD_INTERVAL

    def _end_all(self) -> None:
        """SIGTERM our workers, SIGKILL whatever is left under us after a grace period, and
        wait until nothing is left.

        Only the `dask worker` processes get SIGTERM: each ends its own nanny and worker process
        in order. A forked worker process keeps the nanny's SIGTERM handler, which does nothing
        without the nanny's event loop, so signalling it directly would just cost the grace time.
        """
        send_signal([worker.pid for worker in self.workers if worker.poll() is None],
                    signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while self._reap_children():
            if time.monotonic() > deadline:
                send_signal(descendants(os.getpid()), signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.02)

    def _reap_children(self) -> bool:
        """Collect exited children; True while any child (own or adopted) is left."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True

    def _remember(self, pid: int, role: str) -> None:
        item = record(pid, role)
        if item is not None:
            self.records[pid] = item

    def _record_descendants(self) -> None:
        known = len(self.records)
        for pid in descendants(os.getpid()):
            if pid not in self.records:
                self._remember(pid, "worker-process")
        if len(self.records) != known:
            self._write_records()

    def _write_records(self, finished: bool = False) -> None:
        try:
            write_records(self.record_file, self.records.values(), finished=finished)
        except OSError as error:
            if error.errno != errno.ENOENT:  # cluster directory removed under us: nothing to do
                raise


def main(argv: Optional[list[str]] = None) -> int:
    cluster_dir, host = (sys.argv[1:] if argv is None else argv)[:2]
    spec = read_spec(Path(cluster_dir))
    try:
        return Agent(spec, spec.node(host)).run()
    except NodeFailure as failure:
        print(f"daskhpc agent on {socket.gethostname()}: {failure}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
