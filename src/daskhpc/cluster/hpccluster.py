"""HPCCluster: the cluster start-dask-cluster starts, as the Python object Dask users expect.

`HPCCluster(**options)` takes start-dask-cluster's options as keywords (daskhpc.options.
StartOptions) and starts the very same cluster: planned, supervised, recorded and secured by the
same code, visible to dask-cluster-status and stop-dask-cluster. The object is a
distributed.deploy.Cluster, so `Client(cluster)` (TLS included, through `cluster.security`),
the widget, `adapt()`, `get_logs()` and the JupyterLab Dask tab's factory contract come with it.

Lifetime (see README, "From Python"): a cluster made by `HPCCluster(...)` is held by the process
that made it; `close()` stops it as stop-dask-cluster does, and if that process ends without
closing (a kernel killed or restarted), the supervisor sees its pipe close and stops the cluster
itself. `shutdown_on_close=False` leaves it running instead, as a named cluster. Attaching
(`from_id`, `from_name`, `current`) never stops the cluster on close; `shutdown()` does.

The start itself (allocation, certificates, supervisor) is blocking work; it runs in a thread of
the default executor, so an asynchronous caller's event loop (a Jupyter server) keeps serving.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import dask
from distributed.core import Status, rpc
from distributed.deploy.adaptive import Adaptive as DaskAdaptive
from distributed.deploy.cluster import Cluster
from distributed.utils import Log, Logs, format_dashboard_link

from daskhpc import paths
from daskhpc.cluster import targets
from daskhpc.cluster.head import scaling
from daskhpc.cluster.spec import ClusterSpec
from daskhpc.cluster.state import ClusterState, scheduler_file_owner, select
from daskhpc.errors import DaskhpcError
from daskhpc.options import StartOptions

if TYPE_CHECKING:
    from daskhpc.cluster.commands.start import Holder

DEFAULT_DASHBOARD_LINK = "{scheme}://{host}:{port}/status"


def _start_options(given: dict[str, Any]) -> StartOptions:
    names = [field.name for field in dataclasses.fields(StartOptions)]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise TypeError(
            f"HPCCluster() got an unknown keyword {unknown[0]!r}; it takes start-dask-cluster's "
            f"options: {', '.join(names)}"
        )
    return StartOptions.from_config(**given)


class HPCAdaptive(DaskAdaptive):
    """distributed's Adaptive, growing the cluster without `scale()`, which would stop it."""

    async def scale_up(self, n: int) -> None:
        await self.cluster._scale(n)


class HPCCluster(Cluster):
    """A daskhpc cluster across the allocation's nodes (or this machine alone without one).

    >>> cluster = HPCCluster(workers_per_node=2)        # doctest: +SKIP
    >>> client = Client(cluster)                        # doctest: +SKIP
    """

    def __init__(self, *, asynchronous: bool = False, loop: Any = None,
                 shutdown_on_close: bool = True, **options: Any) -> None:
        # Every keyword and value is checked before anything starts (one line if wrong).
        self._setup(_start_options(options), None, shutdown_on_close, asynchronous, loop)

    # -- attaching --------------------------------------------------------------------------
    @classmethod
    def from_id(cls, cluster_id: str, *, asynchronous: bool = False,
                loop: Any = None) -> HPCCluster:
        """A running cluster (started by start-dask-cluster or another HPCCluster); closing
        this object leaves it running, `shutdown()` stops it."""
        state = select(cluster_id)
        if state.stopped or not state.supervisor_alive():
            raise DaskhpcError(f"cluster {cluster_id} is not running "
                               f"(dask-cluster-status --all lists those that are)")
        cluster = cls.__new__(cls)
        cluster._setup(None, state, False, asynchronous, loop)
        return cluster

    @classmethod
    def from_name(cls, name: str, *, asynchronous: bool = False, loop: Any = None) -> HPCCluster:
        """distributed's and dask-ctl's name for `from_id`: a cluster's name is its id."""
        return cls.from_id(name, asynchronous=asynchronous, loop=loop)

    @classmethod
    def current(cls, *, asynchronous: bool = False, loop: Any = None) -> HPCCluster:
        """The cluster ~/dask-scheduler.json names: `Client(HPCCluster.current())` gives
        notebooks written for a LocalCluster their `client.cluster`."""
        path = paths.default_scheduler_file()
        cluster_id = scheduler_file_owner(path)
        if cluster_id is None:
            raise DaskhpcError(f"{path} names no running daskhpc cluster; start one with "
                               "start-dask-cluster or HPCCluster()")
        return cls.from_id(cluster_id, asynchronous=asynchronous, loop=loop)

    # -- life cycle -------------------------------------------------------------------------
    def _setup(self, options: Optional[StartOptions], state: Optional[ClusterState],
               shutdown_on_close: bool, asynchronous: bool, loop: Any) -> None:
        self._options = options
        self._state = state
        self._holder: Optional[Holder] = None  # the supervisor's pipe, held by this process
        self.shutdown_on_close = shutdown_on_close
        self.security: Any = None
        self._scale_lock: Optional[asyncio.Lock] = None
        if os.environ.get("DASKHPC_JOBQUEUE") or (options is not None and options.jobs) or (
                state is not None and scaling.jobs_configured(state.spec)):
            from daskhpc.cluster.head import jobqueue

            jobqueue.preload(os.environ)  # worker jobs may be submitted, from another thread
        super().__init__(asynchronous=asynchronous, loop=loop,
                         name=state.cluster_id if state else None)
        if not self.called_from_running_loop:
            self._loop_runner.start()
            try:
                self.sync(self._start)
            except BaseException:
                self._loop_runner.stop()
                raise

    def __await__(self) -> Any:
        async def started() -> HPCCluster:
            if self.status == Status.created:
                await self._start()
            return self

        return started().__await__()

    async def _start(self) -> None:
        if self.status != Status.created:
            return
        self.status = Status.starting
        loop = asyncio.get_running_loop()
        try:
            if self._state is None:
                assert self._options is not None
                self._state, self._holder = await loop.run_in_executor(None, self._launch)
            spec = self.spec
            self.name = spec.cluster_id
            if spec.tls_dir:
                from daskhpc.cluster.tls.user import client_tls

                self.security = client_tls().security("client")
            arguments = self.security.get_connection_args("client") if self.security else {}
            self.scheduler_comm = rpc(spec.scheduler_address, connection_args=arguments)
            await super()._start()
        except BaseException:
            self.status = Status.closed  # nothing to close on the Cluster side
            if self._holder is not None:
                await loop.run_in_executor(None, self._stop_cluster)
            raise

    def _launch(self) -> tuple[ClusterState, Optional[Holder]]:
        from daskhpc.cluster.commands.start import start_held

        assert self._options is not None
        return start_held(self._options, self._note, self._warn, hold=self.shutdown_on_close)

    def _note(self, message: str) -> None:
        """Start progress goes to the cluster's log (get_logs()["Cluster"]), not the notebook."""
        self._cluster_manager_logs.append((datetime.datetime.now(), message))

    def _warn(self, message: str) -> None:
        """A node failing, a shortfall, --no-tls: printed as start-dask-cluster prints them."""
        self._note(message)
        print(message, file=sys.stderr)

    @property
    def spec(self) -> ClusterSpec:
        if self._state is None:
            raise RuntimeError("the cluster has not started")
        return self._state.spec

    @property
    def cluster_id(self) -> str:
        return self.spec.cluster_id

    async def _close(self) -> None:
        if self.status == Status.closed:
            return
        await super()._close()
        if self.shutdown_on_close and self._state is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._stop_cluster)

    def _stop_cluster(self) -> None:
        """What stop-dask-cluster does, then let go of the supervisor's pipe."""
        from daskhpc.cluster.commands.stop import stop_cluster

        assert self._state is not None
        if not self._state.stopped:
            stop_cluster(self._state)
        if self._holder is not None:
            self._holder.release()
            self._holder = None

    def close(self, timeout: Optional[float] = None) -> Any:
        awaitable = super().close(timeout)
        if not self.asynchronous:
            self._loop_runner.stop()
        return awaitable

    def shutdown(self) -> Any:
        """Stop the cluster (every process on every node), even one this object attached to."""
        self.shutdown_on_close = True
        if self.status == Status.closed:  # already let go of: only the cluster is left
            self._stop_cluster()
            return None
        return self.close()

    # -- scaling ----------------------------------------------------------------------------
    @property
    def workers(self) -> set[str]:
        """Names of the workers the nodes and worker jobs are to run (distributed's `plan` and
        `requested`)."""
        if self._state is None:
            return set()
        return targets.read(self.spec).names() | set(scaling.job_workers(self.spec))

    def scale(self, n: int) -> Any:  # type: ignore[override]
        """n workers in all: new ones start on the nodes with the fewest, surplus ones retire
        gracefully (their data moves to the others first). Scaling by hand ends adaptive
        scaling (as distributed's widget does): the Dask tab's SCALE after its "Adaptive"
        would otherwise be undone by the Adaptive still running."""
        scaling.check_size(self.spec, n)
        if isinstance(self._adaptive, HPCAdaptive):
            self._adaptive.stop()
            self._adaptive = None
        return self.sync(self._scale, n, asynchronous=self._in_loop())

    def scale_down(self, workers: Any) -> Any:
        """Retire these workers (names or addresses), as distributed's Adaptive asks."""
        return self.sync(self._retire, list(workers), asynchronous=self._in_loop())

    def _in_loop(self) -> bool:
        return bool(self.asynchronous or self.called_from_running_loop)

    async def _scale(self, n: int) -> None:
        if self._scale_lock is None:
            self._scale_lock = asyncio.Lock()
        async with self._scale_lock:
            spec = self.spec
            jobs = scaling.job_workers(spec)
            beyond = n - scaling.capacity(spec)  # workers wanted past the allocation
            if beyond > 0:
                await self._run(scaling.add_workers, spec, scaling.capacity(spec))
                if beyond > len(jobs):
                    await self._run(scaling.add_jobs, spec, beyond - len(jobs))
                elif beyond < len(jobs):
                    await self._retire(jobs[beyond:])  # the newest jobs go first
                return
            if jobs:
                await self._retire(jobs)
            current = targets.read(spec)
            if n >= current.total:
                await self._run(scaling.add_workers, self.spec, n)
                return
            connected = self.observed
            arriving = [name for name in sorted(current.names()) if name not in connected]
            surplus = current.total - n
            chosen = arriving[:surplus]
            if surplus > len(chosen):
                chosen += await self.scheduler_comm.workers_to_close(
                    n=surplus - len(chosen), attribute="name")
            await self._retire(chosen)

    async def _retire(self, names: list[str]) -> None:
        by_address = {address: info["name"] for address, info
                      in self.scheduler_info["workers"].items()}
        names = [str(by_address.get(name, name)) for name in names]
        connected = [name for name in names if name in self.observed]
        if connected:
            await self.scheduler_comm.retire_workers(names=connected, close_workers=True,
                                                     remove=True)
        await self._run(scaling.remove_workers, self.spec, names)
        await self._run(scaling.cancel_jobs, self.spec, names)

    async def _run(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    def adapt(self, Adaptive: type[DaskAdaptive] = HPCAdaptive,
              **kwargs: Any) -> DaskAdaptive:
        """distributed's Adaptive between `minimum` and `maximum` workers (by default at most
        what the allocation holds; more only with worker jobs configured)."""
        if kwargs.get("maximum") is None or kwargs["maximum"] == float("inf"):
            kwargs["maximum"] = scaling.capacity(self.spec)
        scaling.check_size(self.spec, kwargs["maximum"])
        return super().adapt(Adaptive=Adaptive, **kwargs)

    # -- what users look at -----------------------------------------------------------------
    @property
    def dashboard_link(self) -> str:
        """The dashboard, through the JupyterHub proxy when running under JupyterHub."""
        if self._state is None:
            return ""
        spec = self.spec
        proxied = spec.proxied_dashboard(os.environ)
        if proxied and dask.config.get("distributed.dashboard.link") == DEFAULT_DASHBOARD_LINK:
            return proxied
        return str(format_dashboard_link(spec.scheduler_host, spec.dashboard_port_and_path))

    async def _get_logs(self, cluster: bool = True, scheduler: bool = True,
                        workers: Any = True) -> Logs:
        """distributed's logs plus daskhpc's own: the supervisor's and each node's."""
        logs = await super()._get_logs(cluster=cluster, scheduler=scheduler, workers=workers)
        if cluster and self._state is not None:
            log_dir = Path(self.spec.cluster_dir) / "logs"
            for path in sorted(log_dir.glob("*.log")):
                text = path.read_bytes().decode(errors="replace").replace("\r", "")
                logs[f"{path.stem} (node)" if path.stem != "supervisor" else "Supervisor"] = (
                    Log(text))
        return logs


class LabCluster(HPCCluster):
    """The JupyterLab Dask tab's "New" cluster (setup sets `labextension.factory` to it): an
    HPCCluster whose scheduler file is its own, never ~/dask-scheduler.json. That file names
    the cluster notebooks connect to with the usual line, and while one runs there, "New" would
    be refused; the tab's card gives this cluster's address instead."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("scheduler_file", str(
            paths.state_dir() / f"dask-tab-scheduler-{secrets.token_hex(4)}.json"))
        super().__init__(**options)
