"""Node agent: starts one node's workers, records them, and makes sure they end.

`python -m daskhpc.cluster.node.agent CLUSTER_DIR HOST` runs on each node (locally or under
ssh -tt). It is a child subreaper, so a worker process orphaned by its nanny becomes its child,
and it exits only when every process under it is gone; then it marks the node's record file
finished. It kills everything under it (SIGKILL: the cluster is discarded, no orderly close is
needed) on a "stop" line or EOF on stdin, SIGTERM, SIGHUP (its ssh session ended) or SIGINT;
its workers get SIGTERM if it is killed (PR_SET_PDEATHSIG). Standard library only, for a fast
start: each worker imports distributed itself.

Scaling: the agent follows the node's entry in targets.json (daskhpc.cluster.targets), starting
newly named workers and ending those no longer named; its record file lists exactly the
processes alive under it. With no worker left it stays, waiting for targets, unless a worker
failed or the job's end time has come: then the node is done.
"""

from __future__ import annotations

import errno
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

from daskhpc.cluster import targets
from daskhpc.cluster.logs import log
from daskhpc.cluster.network import route_source
from daskhpc.cluster.node import scratch
from daskhpc.cluster.node.processes import (
    ProcessRecord,
    adopt_orphans,
    descendants,
    die_with_parent,
    record,
    send_signal,
    write_records,
)
from daskhpc.cluster.spec import ClusterSpec, NodeSpec, read_spec

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a dismissed worker
RECORD_INTERVAL = 1.0  # how often to add new descendants (nanny-spawned workers) to the record
TARGETS_INTERVAL = 0.25  # how often to look for a changed targets.json (one stat)
# A worker dropped from the targets is usually being retired by the scheduler and exits by
# itself within seconds; a SIGTERM in the middle of that leaves its nanny waiting for a reply that
# never comes. So it gets this long before SIGTERM (then STOP_GRACE before SIGKILL).
RETIRE_GRACE = 20.0
# Workers given --lifetime end up to a second before the job's end time, and not all at once.
END_TIME_SLACK = 10.0


def worker_host(spec: ClusterSpec) -> list[str]:
    """How a worker picks its address: the interface, or the one that routes to the scheduler."""
    if spec.interface:
        return ["--interface", spec.interface]
    if ipaddress.ip_address(spec.scheduler_host).is_loopback:
        return ["--host", spec.scheduler_host]
    return ["--host", route_source(spec.scheduler_host, spec.scheduler_port)]


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
        from daskhpc.cluster.tls.material import load_tls

        argv += load_tls(Path(spec.tls_dir), "worker").cli_args("worker")
    return argv


class NodeFailure(Exception):
    """Why this node cannot run its workers, in one line for the start command to show."""


class Agent:
    def __init__(self, spec: ClusterSpec, node: NodeSpec) -> None:
        self.spec = spec
        self.node = node
        self.record_file = spec.record_file(node.host)
        self.scratch = scratch.node_directory(spec.local_directory, spec.cluster_id, node.host)
        self.stop_requested = threading.Event()
        self.workers: dict[str, subprocess.Popen[bytes]] = {}  # by name, every one started
        self.dismissed: dict[str, float] = {}  # dropped from the targets -> when (monotonic)
        self.terminated: set[str] = set()  # dismissed workers sent SIGTERM
        self.cleaned: set[str] = set()  # ended, scratch removed
        self.targets_stamp: Optional[int] = None
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
            self._write_records()  # the scratch directory is recorded before it exists
            self._follow_targets()
            self._supervise()
        finally:
            self._end_all()
            scratch.remove(str(self.scratch))
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

    def _follow_targets(self) -> None:
        """Start the workers named for this node that have not run yet; end the unnamed."""
        stamp = targets.changed_since(self.spec, self.targets_stamp)
        if stamp is None:
            return
        self.targets_stamp = stamp
        wanted = targets.read(self.spec).nodes.get(self.node.host, ())
        new = [name for name in wanted if name not in self.workers]
        for name in new:
            directory = self.scratch / name
            try:
                scratch.make(self.scratch)
                directory.mkdir(mode=0o700, exist_ok=True)
            except OSError as error:
                raise NodeFailure(f"cannot create the worker directory {directory} "
                                  f"({error.strerror}); give --local-directory a node-local "
                                  "directory that exists on every node") from None
            argv = worker_argv(self.spec, self.node, name, directory)
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=self.worker_env,
                                       preexec_fn=die_with_parent)
            self.workers[name] = process
            self._remember(process.pid, "worker")
        unwanted = [name for name in self.workers
                    if name not in wanted and name not in self.dismissed]
        self.dismissed.update({name: time.monotonic() for name in unwanted})
        if new or unwanted:
            log("agent", f"{socket.gethostname()}: started {len(new)} worker(s), ending "
                f"{len(unwanted)}; {len(wanted)} wanted", sys.stdout)
            self._write_records()

    def _supervise(self) -> None:
        next_record = time.monotonic() + RECORD_INTERVAL
        next_targets = time.monotonic() + TARGETS_INTERVAL
        while not self.stop_requested.wait(0.05):
            if self._node_done():
                codes = {name: worker.returncode for name, worker in self.workers.items()}
                print(f"daskhpc agent: all workers ended (exit codes {codes})", flush=True)
                return
            now = time.monotonic()
            if now >= next_targets:
                self._follow_targets()
                self._end_dismissed(now)
                self._clean_ended()
                next_targets = now + TARGETS_INTERVAL
            if now >= next_record:
                self._record_descendants()
                next_record = now + RECORD_INTERVAL

    def _node_done(self) -> bool:
        """No worker runs and none will: one failed (or all were refused), or the job ends.

        Workers retired by scaling end with 0 and leave the agent waiting for new targets.
        """
        if any(worker.poll() is None for worker in self.workers.values()):
            return False
        failed = any(worker.returncode != 0 and name not in self.dismissed
                     for name, worker in self.workers.items())
        end = self.spec.worker_end_time
        return failed or (end is not None and time.time() >= end - END_TIME_SLACK)

    def _end_dismissed(self, now: float) -> None:
        """SIGTERM dismissed workers still running after RETIRE_GRACE, SIGKILL (with what they
        started) after STOP_GRACE more."""
        for name, since in self.dismissed.items():
            worker = self.workers[name]
            if worker.poll() is not None or now < since + RETIRE_GRACE:
                continue
            if now < since + RETIRE_GRACE + STOP_GRACE:
                if name not in self.terminated:
                    send_signal([worker.pid], signal.SIGTERM)
                    self.terminated.add(name)
            else:
                send_signal([*descendants(worker.pid), worker.pid], signal.SIGKILL)

    def _clean_ended(self) -> None:
        for name, worker in self.workers.items():
            if name not in self.cleaned and worker.poll() is not None:
                shutil.rmtree(self.scratch / name, ignore_errors=True)
                self.cleaned.add(name)

    def _end_all(self) -> None:
        """Kill every process under us at once and wait until none is left.

        Whatever ends the agent discards the cluster, so its workers need no orderly close (a
        nanny closing its worker, then the interpreters' teardown: seconds at 16 nodes on a
        busy machine). All of them are our descendants (we are a subreaper), and a descendant's
        PID is not reused before we or its parent reap it, so this signals no stranger. Repeated
        until nothing is left: a process may fork while we look.
        """
        while True:
            send_signal(descendants(os.getpid()), signal.SIGKILL)
            if not self._reap_children():
                return
            time.sleep(0.01)

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
        """Add new descendants and drop the processes that ended: the record stays exact."""
        before = set(self.records)
        for pid in descendants(os.getpid()):
            if pid not in self.records:
                self._remember(pid, "worker-process")
        me = os.getpid()
        self.records = {pid: item for pid, item in self.records.items()
                        if pid == me or item.alive()}
        if set(self.records) != before:
            self._write_records()

    def _write_records(self, finished: bool = False) -> None:
        try:
            write_records(self.record_file, self.records.values(), finished=finished,
                          scratch=str(self.scratch))
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
