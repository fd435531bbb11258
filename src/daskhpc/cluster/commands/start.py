"""start-dask-cluster: plan the cluster, hand it to a detached supervisor, report when ready.

The start command itself runs nothing of the cluster: it validates input (so bad input leaves
nothing behind), writes the spec, starts the supervisor in its own session and relays its
progress. If this command is interrupted or killed before the cluster is ready, the supervisor
sees its stdin close and tears everything down; when interrupted, we wait for that to finish.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Optional, Sequence

from daskhpc.cluster import messages, plan
from daskhpc.cluster.batch import detect, with_job_end
from daskhpc.cluster.head import jobqueue
from daskhpc.cluster.head.cleanup import forget, reap_leftovers
from daskhpc.cluster.head.detach import spawn_supervisor
from daskhpc.cluster.launchers import choose, get_launcher
from daskhpc.cluster.network import is_this_machine
from daskhpc.cluster.node.processes import record
from daskhpc.cluster.spec import ClusterSpec
from daskhpc.cluster.state import (
    ClusterState,
    make_cluster_dir,
    new_cluster_id,
    prune_stopped,
    running_clusters,
    scheduler_file_field,
    scheduler_file_owner,
)
from daskhpc.doctor.hint import command_line as doctor_command
from daskhpc.doctor.paths import check_start_paths
from daskhpc.errors import DaskhpcError
from daskhpc.options import StartOptions

TEARDOWN_WAIT = 60.0  # seconds to wait for the supervisor's teardown after a failure


def run(options: StartOptions) -> int:
    spec, why = prepare(options)
    print(starting_line(spec, why), file=sys.stderr)
    with doctor_hint(options):
        code = Starter(spec).run()
    if code == 0 and options.jobs:
        submit_jobs(spec, options.jobs, print)
    return code


def prepare(options: StartOptions) -> tuple[ClusterSpec, str]:
    """Check everything and write the cluster's spec; nothing runs yet. Bad input raises here,
    leaving nothing behind. Returns the spec and why its launcher was chosen."""
    allocation = with_job_end(detect(os.environ, options.hostfile, options.hosts), os.environ)
    launcher, why = choose(options.launcher, allocation, os.environ)
    jobqueue.check(options.jobs, os.environ)
    check_start_paths(plan.scheduler_file(options.scheduler_file), options.local_directory,
                      any(is_this_machine(node.host) for node in allocation.nodes))
    check_scheduler_file(plan.scheduler_file(options.scheduler_file))
    if not options.tls:
        print("warning: --no-tls: anyone who can reach the scheduler port can run code as you",
              file=sys.stderr)
    prune_stopped()
    cluster_id = new_cluster_id()
    cluster_dir = make_cluster_dir(cluster_id)
    try:
        tls_dir = make_tls(cluster_dir, cluster_id, allocation.end_time) if options.tls else None
        spec = plan.build_spec(options, allocation, launcher, cluster_id, cluster_dir, tls_dir,
                               remote_has_infiniband)
        get_launcher(launcher, spec)  # an unavailable launcher fails here, before anything runs
        spec.write()
    except BaseException:
        shutil.rmtree(cluster_dir, ignore_errors=True)
        raise
    return spec, why


@contextlib.contextmanager
def doctor_hint(options: StartOptions) -> Iterator[None]:
    """A start that failed says how to find the cause."""
    try:
        yield
    except DaskhpcError as error:
        raise DaskhpcError(f"{error}\nto find the cause: {doctor_command(options)}",
                           error.exit_code) from None


def starting_line(spec: ClusterSpec, why: str) -> str:
    return (f"starting cluster {spec.cluster_id}: {spec.total_workers} workers on "
            f"{len(spec.nodes)} node(s), launcher {spec.launcher} ({why})")


def submit_jobs(spec: ClusterSpec, count: int, say: Callable[[str], None]) -> None:
    """--jobs, once the cluster is ready. When they cannot be submitted the start has failed,
    and like any failed start it leaves nothing running: the cluster is stopped."""
    try:
        job_ids = jobqueue.submit_jobs(spec, count, os.environ)
    except BaseException as error:
        from daskhpc.cluster.commands.stop import stop_cluster

        stop_cluster(ClusterState(Path(spec.cluster_dir)))
        if isinstance(error, DaskhpcError):
            raise DaskhpcError(f"{error}; cluster {spec.cluster_id} stopped, nothing of it is "
                               "left running (fix the site's jobqueue settings or leave out "
                               "--jobs)", error.exit_code) from None
        raise
    say(f"submitted {len(job_ids)} worker job(s) that join this cluster: "
        f"{' '.join(job_ids)} (stop-dask-cluster cancels them)")


def make_tls(cluster_dir: Path, cluster_id: str, job_end: Optional[float]) -> Path:
    from daskhpc.cluster.tls.user import cluster_tls

    return cluster_tls(cluster_dir / "tls", cluster_id, job_end).directory


def remote_has_infiniband(hosts: Sequence[str]) -> bool:
    """Whether every remote host has ib0: one quick ssh each, in parallel, asked only when this
    node has ib0 itself."""
    from daskhpc.cluster.launchers.ssh import SSH_OPTIONS, ssh_command

    probes = [subprocess.Popen([*ssh_command(), *SSH_OPTIONS, host, "test -e /sys/class/net/ib0"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) for host in hosts]
    return all([probe.wait(timeout=30) == 0 for probe in probes])


def check_scheduler_file(path: Path) -> None:
    """A live cluster's file is never replaced; a dead one's is removed, never reused."""
    if not path.exists():
        return
    in_use = scheduler_file_in_use(path)
    if in_use:
        raise DaskhpcError(in_use)
    print(f"removing stale scheduler file {path} (its scheduler is gone)", file=sys.stderr)
    path.unlink(missing_ok=True)


def scheduler_file_in_use(path: Path) -> Optional[str]:
    """Why an existing scheduler file belongs to a running cluster, or None when it is stale."""
    owner = scheduler_file_owner(path)
    for state in running_clusters():
        if state.cluster_id == owner and state.supervisor_alive():
            return (f"cluster {owner} is running with scheduler file {path}; stop it first "
                    "(stop-dask-cluster) or give this one another --scheduler-file")
    address = scheduler_file_field(path, "address")
    if address and _answers(address):
        return (f"a running scheduler ({address}) uses {path}; stop it or give this cluster "
                "another --scheduler-file")
    return None


def _answers(address: str) -> bool:
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


class Interrupted(Exception):
    pass


def _interrupt(signum: int, frame: Optional[FrameType]) -> None:
    raise Interrupted(signal.Signals(signum).name)


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


class Starter:
    """Runs the supervisor and relays what it says until the cluster is ready (or fails).

    `note` gets progress, `warn` what the user must see (failed nodes, a shortfall); both
    print to stderr for the command, an HPCCluster keeps progress in its log instead.
    """

    def __init__(self, spec: ClusterSpec, note: Callable[[str], None] = _to_stderr,
                 warn: Callable[[str], None] = _to_stderr) -> None:
        self.spec = spec
        self.state = ClusterState(Path(spec.cluster_dir))
        self.log = Path(spec.cluster_dir) / "logs" / "supervisor.log"
        self.note = note
        self.warn = warn

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, _interrupt)
        try:
            supervisor, ready = self.launch()
        except (Interrupted, KeyboardInterrupt):
            print("\ninterrupted: stopping the cluster", file=sys.stderr)
            return 130
        assert supervisor.stdin is not None
        supervisor.stdin.write(f"{messages.ACKNOWLEDGE}\n".encode())
        supervisor.stdin.close()
        self._report(ready)
        return 0

    def launch(self) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
        """Start the supervisor and wait until every worker is connected; on a failure or an
        interruption the cluster is torn down before this raises. The caller answers the
        supervisor ("ok" or "hold") on its stdin."""
        supervisor = self._spawn()
        try:
            ready = self._relay(supervisor)
        except BaseException:
            self._abandon(supervisor)
            raise
        if ready["missing"]:
            self.warn(f"warning: continuing with {ready['connected']} of "
                      f"{self.spec.total_workers} workers (--min-workers "
                      f"{self.spec.min_workers}); short: {', '.join(ready['missing'])}")
        return supervisor, ready

    def _spawn(self) -> subprocess.Popen[bytes]:
        spec = self.spec
        supervisor = spawn_supervisor(spec.python, spec.pythonpath, Path(spec.cluster_dir),
                                      self.log)
        item = record(supervisor.pid, "supervisor")
        if item is not None:
            self.state.write_supervisor(item)
        return supervisor

    def _relay(self, supervisor: subprocess.Popen[bytes]) -> dict[str, Any]:
        assert supervisor.stdout is not None
        expected = self.spec.total_workers
        for raw in supervisor.stdout:
            message = messages.decode(raw)
            event = message["event"]
            if event == messages.PROGRESS:
                self.note(f"workers connected: {message['connected']}/{expected}")
            elif event == messages.NODE_FAILED:
                tail = "\n    ".join(message["log"].splitlines()) or "(log is empty)"
                self.warn(f"node {message['host']} failed; end of its log:\n    {tail}")
            elif event == messages.READY:
                return dict(message)
            elif event == messages.ERROR:
                self._wait_for_teardown(supervisor)
                raise DaskhpcError(message["message"], exit_code=1)
        self._wait_for_teardown(supervisor)
        tail = self._log_tail()
        raise DaskhpcError(f"the cluster's supervisor ended before the cluster was ready: {tail}",
                           exit_code=1)

    def _abandon(self, supervisor: subprocess.Popen[bytes]) -> None:
        """Closing its stdin before the acknowledgement tells the supervisor to tear down."""
        if supervisor.stdin is not None:
            supervisor.stdin.close()
        self._wait_for_teardown(supervisor)

    def _wait_for_teardown(self, supervisor: subprocess.Popen[bytes]) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second ^C must not leave orphans
        try:
            supervisor.wait(timeout=TEARDOWN_WAIT)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            supervisor.wait()
        reap_leftovers(self.state)
        forget(self.state)

    def _log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) + f" (log: {self.log})"

    def _report(self, ready: dict[str, Any]) -> None:
        spec = self.spec
        lines = [
            f"Dask cluster {spec.cluster_id} is running: {ready['connected']} workers on "
            f"{len(spec.nodes)} node(s)",
            f"  scheduler:      {spec.scheduler_address}",
            f"  dashboard:      {spec.dashboard_address}",
        ]
        proxied = spec.proxied_dashboard(os.environ)
        if proxied:
            lines.append(f"  via JupyterHub: {proxied}")
        lines += [
            f"  scheduler file: {spec.scheduler_file}",
            "Connect from Python:",
            "  from dask.distributed import Client",
            f"  client = Client(scheduler_file={spec.scheduler_file!r})",
            f"Stop it with: stop-dask-cluster {spec.cluster_id}",
        ]
        print("\n".join(lines), flush=True)


class Holder:
    """An HPCCluster's end of the supervisor's stdin: the cluster lives while it is open."""

    def __init__(self, supervisor: subprocess.Popen[bytes]) -> None:
        self.supervisor = supervisor

    def release(self) -> None:
        """Close the pipe (a held cluster then stops itself) and collect the supervisor once
        it has ended (it is this process's child)."""
        if self.supervisor.stdin is not None and not self.supervisor.stdin.closed:
            self.supervisor.stdin.close()
        threading.Thread(target=self.supervisor.wait, daemon=True).start()


def start_held(options: StartOptions, note: Callable[[str], None],
               warn: Callable[[str], None], hold: bool) -> tuple[ClusterState, Optional[Holder]]:
    """What start-dask-cluster does, for an HPCCluster: returns once every worker is connected.

    With `hold` the supervisor is told "hold" and its stdin stays open in the returned Holder:
    the cluster stops when that is released or this process ends. Without, "ok", as the
    command says: the cluster runs until stopped.
    """
    spec, why = prepare(options)
    note(starting_line(spec, why))
    with doctor_hint(options):
        supervisor, ready = Starter(spec, note, warn).launch()
    assert supervisor.stdin is not None and supervisor.stdout is not None
    supervisor.stdout.close()  # it says nothing more once answered
    supervisor.stdin.write(f"{messages.HOLD if hold else messages.ACKNOWLEDGE}\n".encode())
    supervisor.stdin.flush()
    holder = Holder(supervisor) if hold else None
    if not hold:
        supervisor.stdin.close()
    note(f"Dask cluster {spec.cluster_id} is running: {ready['connected']} workers on "
         f"{len(spec.nodes)} node(s)")
    if options.jobs:
        try:
            submit_jobs(spec, options.jobs, note)
        except BaseException:
            if holder is not None:
                holder.release()
            raise
    return ClusterState(Path(spec.cluster_dir)), holder
