"""The supervisor: one detached process per cluster that owns all of it.

start-dask-cluster starts it as a fresh interpreter in a new session (daskhpc.cluster.head.detach),
which starts the node sessions FIRST (ssh handshakes overlap with importing distributed; workers
retry until the scheduler answers) and hands them over. The supervisor runs the Scheduler
in-process (its dashboard is attached once the workers are connected: head/dashboard.py),
reports progress and readiness to the start command (daskhpc.cluster.messages), and waits for
its acknowledgement. If the start command goes away before that (EOF), or on
SIGTERM/SIGINT/SIGHUP later, it shuts down: ask every node session to stop at once (each agent
kills its workers: the cluster is discarded), wait until each node agent has verified its
processes are gone, remove the scheduler file and the scheduler's scratch directory, and exit
without closing the scheduler. A node whose session ends while the cluster runs (lost) has its
workers removed from the scheduler at once and is named in status.json.

"hold" instead of the acknowledgement (an HPCCluster in a kernel) binds the cluster to the
process that started it: when that process ends, even killed, its end of the pipe closes and the
cluster shuts down the same way, then does what stop-dask-cluster would (cancel worker jobs,
check the nodes' records, mark the cluster stopped), since nobody is left to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Optional

from daskhpc.cluster import logs, messages, names
from daskhpc.cluster.launchers.base import NodeSession
from daskhpc.cluster.node import scratch
from daskhpc.cluster.spec import ClusterSpec
from daskhpc.cluster.state import ClusterState, remove_scheduler_file
from daskhpc.files import write_private

SESSION_STOP_TIMEOUT = 15.0  # seconds for node sessions to end after "stop" before SIGTERM
# While workers connect, the supervisor wakes when one joins or leaves, or stop is asked for;
# else every SESSION_CHECK s (a node session may have failed). Wakes are at least
# PROGRESS_SPACING s apart, so a thousand arrivals cost tens of passes, not a thousand.
SESSION_CHECK = 0.25
PROGRESS_SPACING = 0.05


def log(message: str) -> None:
    """A line in the supervisor's log (its stderr), next to the scheduler's."""
    logs.log("supervisor", message)


class Supervisor:
    def __init__(self, spec: ClusterSpec, sessions: list[NodeSession]) -> None:
        self.spec = spec
        self.state = ClusterState(Path(spec.cluster_dir))
        self.sessions = sessions
        self.failed: set[str] = set()
        self.lost: set[str] = set()  # failed and unreachable: nothing there can be checked
        self.stop = threading.Event()  # set from signal handlers and the stdin thread
        self.acknowledged = threading.Event()
        self.held = False  # "hold": the cluster lives as long as the process that started it
        self.creator_gone = False
        self._messages = sys.stdout
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._changed: Optional[asyncio.Event] = None  # a worker joined or left, or stop

    # -- talking to the start command ---------------------------------------------------------
    def tell(self, event: str, **data: Any) -> None:
        if self.acknowledged.is_set():
            return
        try:
            self._messages.write(messages.encode(event, **data))
            self._messages.flush()
        except (BrokenPipeError, ValueError):
            self._stop()

    def _read_start_command(self) -> None:
        for line in sys.stdin:
            answer = line.strip()
            if answer in (messages.ACKNOWLEDGE, messages.HOLD):
                self.held = answer == messages.HOLD
                self.acknowledged.set()
        if self.held or not self.acknowledged.is_set():
            # the start command died (or was interrupted) before readiness, or the process
            # holding the cluster ended
            self.creator_gone = self.held
            self._stop()

    def _stop(self) -> None:
        """Ask for the shutdown, from any thread or a signal handler, and wake the loop."""
        self.stop.set()
        loop, changed = self._loop, self._changed
        if loop is not None and changed is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(changed.set)

    # -- life cycle -------------------------------------------------------------------------------
    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda *_: self._stop())
        threading.Thread(target=self._read_start_command, daemon=True).start()
        log(f"{len(self.sessions)} node session(s) launched with {self.spec.launcher}")
        try:
            # Not asyncio.run(): its teardown (cancelling the scheduler's tasks) is work for
            # nothing, as the process ends with os._exit (daskhpc.cluster.head.detach).
            return asyncio.new_event_loop().run_until_complete(self._serve())
        finally:
            self._end_sessions()
            log("every node session ended")
            # distributed removes its workspace only when the scheduler is closed (never here)
            scratch.remove(self.spec.scheduler_directory)
            if self.creator_gone:
                self._stopped_by_itself()

    def _stopped_by_itself(self) -> None:
        from daskhpc.cluster.head import jobqueue
        from daskhpc.cluster.head.cleanup import forget, reap_leftovers

        jobqueue.cancel_recorded(self.state.directory)
        reaped = reap_leftovers(self.state)
        forget(self.state)
        log(f"the process holding the cluster ended: stopped ({reaped} leftover(s) ended)")

    async def _serve(self) -> int:
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self.stop.is_set():  # asked before the loop could be woken
            self._changed.set()
        # Imported only now, with the node sessions already starting.
        import dask
        from distributed import Scheduler

        from daskhpc.cluster.head import dashboard

        security = None
        if self.spec.tls_dir:
            from daskhpc.cluster.tls.material import load_tls

            security = load_tls(Path(self.spec.tls_dir), "scheduler").security("scheduler")
        local_directory = None
        if self.spec.scheduler_directory:
            local_directory = self.spec.scheduler_directory
            scratch.make(Path(local_directory))
        with dask.config.set({"distributed.scheduler.http.routes": dashboard.scheduler_routes()}):
            scheduler = Scheduler(
                host=self.spec.scheduler_host,
                port=self.spec.scheduler_port,
                protocol=self.spec.protocol,
                dashboard=False,  # attached after readiness: daskhpc.cluster.head.dashboard
                dashboard_address=f"{self.spec.scheduler_host}:{self.spec.dashboard_port}",
                http_prefix=self.spec.dashboard_prefix or "/",
                security=security,
                local_directory=local_directory,
            )
        if self.spec.dashboard_prefix:
            dashboard.guard(scheduler, self.spec.dashboard_prefix,
                            self.spec.dashboard_port_and_path)
        placeholder = dashboard.serve_starting_page(scheduler, self.spec.dashboard_prefix)
        _on_workers_changed(scheduler, self._changed.set)
        try:
            await scheduler
            log(f"scheduler listening at {self.spec.scheduler_address}")
            code = await self._until_ready(scheduler)
            if code == 0:
                dashboard.attach_later(scheduler, placeholder, self.spec.dashboard_prefix, log)
                await self._until_stopped(scheduler)
            return code
        finally:
            log("shutting down")
            # The agents kill their workers; meanwhile the event loop stays blocked, so the
            # scheduler spends nothing on the workers it loses. It is not closed: the cluster is
            # discarded, and its connections end with the process (os._exit).
            self._end_sessions()
            remove_scheduler_file(self.spec)

    async def _until_ready(self, scheduler: Any) -> int:
        deadline = time.monotonic() + self.spec.timeout
        reported = -1
        while not self.stop.is_set():
            connected = self._per_host(scheduler)
            count = sum(connected.values())
            if count != reported:
                self.tell(messages.PROGRESS, connected=count, expected=self.spec.total_workers)
                reported = count
            self._note_failed_sessions(connected)
            waiting_for = [node for node in self.spec.nodes
                           if node.host not in self.failed and connected[node.host] < node.workers]
            if not waiting_for or time.monotonic() > deadline:
                break
            await asyncio.sleep(PROGRESS_SPACING)
            await self._nap(SESSION_CHECK - PROGRESS_SPACING)
        if self.stop.is_set():
            return 1
        connected = self._per_host(scheduler)
        count = sum(connected.values())
        missing = [node.host for node in self.spec.nodes if connected[node.host] < node.workers]
        if count < self.spec.min_workers or count == 0:
            timed_out = time.monotonic() > deadline
            self.tell(messages.ERROR, message=self._shortfall(count, missing, timed_out))
            return 1
        try:
            self._write_scheduler_file(scheduler)
        except OSError as error:
            self.tell(messages.ERROR, message=f"cannot write the scheduler file "
                                       f"{self.spec.scheduler_file} ({error.strerror})")
            return 1
        self.tell(messages.READY, connected=count, expected=self.spec.total_workers,
                  missing=missing)
        await asyncio.get_running_loop().run_in_executor(None, self._wait_for_answer)
        return 0 if self.acknowledged.is_set() else 1

    def _wait_for_answer(self) -> None:
        while not (self.acknowledged.wait(0.05) or self.stop.is_set()):
            pass

    async def _until_stopped(self, scheduler: Any) -> None:
        # the start command is gone: nothing reads stdout any more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        last: Optional[dict[str, Any]] = None
        while not self.stop.is_set():
            if all(session.process.poll() is not None for session in self.sessions):
                # Every node session is over (the batch job ended, workers retired at the
                # walltime, nodes lost): no worker can come back, so the scheduler goes too.
                return
            await self._drop_lost_nodes(scheduler)
            status = self._status(scheduler)
            if status != last:
                self.state.write_status(status)
                last = status
            await self._nap(0.2)  # woken at once by stop-dask-cluster's SIGTERM

    async def _nap(self, seconds: float) -> None:
        """Until a worker joins or leaves, stop is asked for, or `seconds` have passed."""
        assert self._changed is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)
        self._changed.clear()

    # -- what the scheduler sees ------------------------------------------------------------------
    def _per_host(self, scheduler: Any) -> Counter[str]:
        """Connected workers per node, from the names the agents gave them."""
        counts: Counter[str] = Counter({node.host: 0 for node in self.spec.nodes})
        for worker in scheduler.workers.values():
            host = names.place(str(worker.name), self.spec.cluster_id)
            if host in counts:
                counts[host] += 1
        return counts

    def _status(self, scheduler: Any) -> dict[str, Any]:
        nodes: dict[str, dict[str, Any]] = {
            node.host: {"workers": 0, "threads": 0, "memory": 0} for node in self.spec.nodes
        }
        for worker in scheduler.workers.values():
            place = names.place(str(worker.name), self.spec.cluster_id)
            entry = nodes.setdefault(place, {"workers": 0, "threads": 0, "memory": 0})
            entry["workers"] += 1
            entry["threads"] += worker.nthreads
            entry["memory"] += worker.memory_limit or 0
        return {"nodes": nodes, "failed": sorted(self.failed), "lost": sorted(self.lost)}

    async def _drop_lost_nodes(self, scheduler: Any) -> None:
        """A node whose session ended while the cluster runs is lost: ssh gave up on it (no
        answer to its keepalives: power loss, a pulled cable) or its agent ended. Its workers
        are removed from the scheduler at once, so their tasks move to the other nodes now
        instead of after the scheduler's worker timeout, and status names the node."""
        for session in self.sessions:
            ended = set(session.hosts) - self.failed
            if not ended or session.process.poll() is None:
                continue
            self.failed |= ended
            if await asyncio.get_running_loop().run_in_executor(None, session.unreachable):
                self.lost |= ended
            log(f"node session of {', '.join(sorted(ended))} ended (exit "
                f"{session.process.returncode}); removing its workers: {session.log_tail(1)}")
            for address, worker in list(scheduler.workers.items()):
                if names.place(str(worker.name), self.spec.cluster_id) in ended:
                    await scheduler.remove_worker(address, stimulus_id="daskhpc-node-lost",
                                                  close=False)

    def _note_failed_sessions(self, connected: Counter[str]) -> None:
        for session in self.sessions:
            if session.process.poll() is None:
                continue
            for host in session.hosts:
                if host not in self.failed and connected[host] < self.spec.node(host).workers:
                    self.failed.add(host)
                    self.tell(messages.NODE_FAILED, host=host, log=session.log_tail())

    def _shortfall(self, count: int, missing: list[str], timed_out: bool) -> str:
        where = ", ".join(missing) or "none"
        within = f" within {self.spec.timeout:g} s (--timeout)" if timed_out else ""
        return (
            f"only {count} of {self.spec.total_workers} workers connected{within} "
            f"(at least {self.spec.min_workers} needed; nodes short: "
            f"{where}); logs in {self.spec.cluster_dir}/logs"
        )

    # -- files ----------------------------------------------------------------------------------
    def _write_scheduler_file(self, scheduler: Any) -> None:
        path = Path(self.spec.scheduler_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        identity = scheduler.identity()
        identity["daskhpc_cluster"] = self.spec.cluster_id
        write_private(path, json.dumps(identity, indent=2))

    def _end_sessions(self) -> None:
        """Ask every session to stop at once, then wait for all of them (stop-dask-cluster waits
        on this): SIGTERM after SESSION_STOP_TIMEOUT, SIGKILL 5 s later."""
        for session in self.sessions:
            session.request_stop()
        for timeout, end in ((SESSION_STOP_TIMEOUT, NodeSession.kill), (5.0, _kill_process)):
            deadline = time.monotonic() + timeout
            while self._running_sessions() and time.monotonic() < deadline:
                time.sleep(0.01)  # polling every session: no order to wait in
            for session in self._running_sessions():
                end(session)
        for session in self.sessions:
            session.process.wait()

    def _running_sessions(self) -> list[NodeSession]:
        return [session for session in self.sessions if session.process.poll() is None]


def _on_workers_changed(scheduler: Any, callback: Callable[[], None]) -> None:
    """`callback()` (in the event loop) whenever a worker joins or leaves the scheduler."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    class WorkersChanged(SchedulerPlugin):
        name = "daskhpc-workers-changed"

        def add_worker(self, scheduler: Any, worker: str) -> None:
            callback()

        def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
            callback()

    scheduler.add_plugin(WorkersChanged())


def _kill_process(session: NodeSession) -> None:
    session.process.kill()
