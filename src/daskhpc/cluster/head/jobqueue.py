"""`start-dask-cluster --jobs N`: N more batch jobs of workers that join the running cluster.

dask-jobqueue writes and submits the job scripts (its Job classes, without its own scheduler):
each job runs `dask worker` against our scheduler with the cluster's worker certificate (TLS),
our death timeout, and the batch system's settings from the site's dask-jobqueue configuration
(`jobqueue.slurm.queue`, `.account`, `.walltime`, `.cores`, `.memory`, ...). The job ids are
recorded in the cluster directory; stop-dask-cluster cancels them. If the scheduler goes away
without a stop, the workers exit after the death timeout and their jobs end with them.
"""

from __future__ import annotations

import importlib
import json
import shlex
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping

from daskhpc.cluster import batch
from daskhpc.cluster.batch.base import BatchSystem
from daskhpc.cluster.names import job_worker
from daskhpc.cluster.node import scratch
from daskhpc.cluster.spec import ClusterSpec
from daskhpc.errors import DaskhpcError
from daskhpc.files import write_private

JOBS_FILE = "jobs.json"

def batch_system(environ: Mapping[str, str]) -> BatchSystem:
    """DASKHPC_JOBQUEUE if set (site setting), else the first batch system whose submit command
    is here (daskhpc.cluster.batch: each system says when it takes jobs)."""
    chosen = environ.get("DASKHPC_JOBQUEUE", "").strip().lower()
    if chosen:
        system = batch.by_name(chosen)
        if system is None:
            names = ", ".join(known.name for known in batch.systems())
            raise DaskhpcError(f"DASKHPC_JOBQUEUE={chosen!r} is not one of {names}; "
                               "fix or unset it")
        return system
    for system in batch.systems():
        if system.takes_jobs_here(environ, shutil.which):
            return system
    raise DaskhpcError("--jobs needs a batch system (sbatch, qsub or bsub on PATH); "
                       "load its module or leave out --jobs")


def check(count: int, environ: Mapping[str, str]) -> None:
    """Fail before anything starts when --jobs cannot work here."""
    if count:
        system = batch_system(environ)
        if shutil.which(system.submit_command) is None:
            raise DaskhpcError(f"--jobs with {system.name} needs {system.submit_command} on "
                               "PATH; load its module")


def _job_class(system: BatchSystem) -> Any:
    module_name, class_name = system.job_class.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def preload(environ: Mapping[str, str]) -> None:
    """Import dask-jobqueue now, from the main thread, keeping this process's SIGINT handler.

    Importing it sets a SIGINT handler (dask_jobqueue.runner), which Python allows only in the
    main thread, and which would replace a Jupyter kernel's; an HPCCluster submits its jobs from
    a worker thread, so it imports them here first (from its caller, the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGINT)
    try:
        _job_class(batch_system(environ))
    finally:
        signal.signal(signal.SIGINT, previous)


def _job_size(spec: ClusterSpec, system: str) -> dict[str, Any]:
    """Per job: the site's dask-jobqueue settings, else what one node of this cluster has."""
    import dask
    from dask.utils import format_bytes

    node = spec.nodes[0]
    size: dict[str, Any] = {}
    if dask.config.get(f"jobqueue.{system}.cores", None) is None:
        size["cores"] = node.workers * node.threads_per_worker
        size["processes"] = node.workers
    if dask.config.get(f"jobqueue.{system}.memory", None) is None:
        size["memory"] = format_bytes(max(node.memory_limit, 2**30) * node.workers)
    return size


def _one_worker(spec: ClusterSpec, system: str) -> dict[str, Any]:
    """A job of one worker (HPCCluster.scale past the allocation): the site's cores and memory
    per job, else those of one of this cluster's workers."""
    import dask
    from dask.utils import format_bytes

    node = spec.nodes[0]
    size: dict[str, Any] = {"processes": 1}
    if dask.config.get(f"jobqueue.{system}.cores", None) is None:
        size["cores"] = node.threads_per_worker
    if dask.config.get(f"jobqueue.{system}.memory", None) is None:
        size["memory"] = format_bytes(max(node.memory_limit, 2**30))
    return size


def submit_jobs(spec: ClusterSpec, count: int, environ: Mapping[str, str],
                one_worker: bool = False) -> list[str]:
    """Submit `count` worker jobs for this cluster; returns their job ids (recorded for stop).

    `one_worker`: each job runs one worker, named as its job is in the record, so that scaling
    can retire the worker and cancel its job together.
    """
    import asyncio  # here, not at the top: every start imports this module, few use --jobs

    chosen = batch_system(environ)
    system = chosen.name  # the key of the site's jobqueue.<system>.* settings
    job_class = _job_class(chosen)
    security = None
    if spec.tls_dir:
        from daskhpc.cluster.tls.material import load_tls

        security = load_tls(Path(spec.tls_dir), "worker").security("worker")
    log_directory = Path(spec.cluster_dir) / "logs" / "jobs"
    log_directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    job_ids: list[str] = []
    names: dict[str, str] = {}
    first = recorded(Path(spec.cluster_dir)).get("next_index", 0)
    site_prologue = _site_prologue(system)

    async def submit(index: int) -> str:
        job = job_class(
            scheduler=spec.scheduler_address,
            name=job_worker(index, spec.cluster_id),
            job_name=f"dask-{spec.cluster_id}",
            protocol=spec.protocol,
            security=security,
            interface=spec.interface,
            death_timeout=spec.death_timeout,
            nanny=spec.nanny,
            python=spec.python,
            # node-local scratch, chosen on the worker's node and removed when its job ends
            local_directory="$DASKHPC_SCRATCH",
            job_script_prologue=[*site_prologue, *scratch.job_script_lines(
                spec.local_directory, spec.cluster_id, f"job{index}")],
            log_directory=str(log_directory),
            **(_one_worker(spec, system) if one_worker else _job_size(spec, system)),
        )
        await job.start()
        if one_worker:
            names[str(job.job_id)] = job.name
        return str(job.job_id)

    try:
        for index in range(first, first + count):
            job_ids.append(asyncio.run(submit(index)))
    except (RuntimeError, ValueError, OSError) as error:
        cancel(job_ids, system)
        raise DaskhpcError(f"submitting worker job {len(job_ids) + 1} of {count} failed "
                           f"({str(error).strip().splitlines()[-1]})") from None
    finally:
        _record(spec, system, job_ids, names, first + len(job_ids))
    return job_ids


def _site_prologue(system: str) -> list[str]:
    """The site's job-script-prologue lines (env-extra, their old name, if that is all)."""
    import dask

    lines = (dask.config.get(f"jobqueue.{system}.job-script-prologue", None)
             or dask.config.get(f"jobqueue.{system}.env-extra", None) or [])
    return [str(line) for line in lines]


def recorded(cluster_dir: Path) -> dict[str, Any]:
    """jobs.json: the system, the job ids, worker name by job id for one-worker jobs, and the
    number in the next job's name."""
    try:
        data: dict[str, Any] = json.loads((cluster_dir / JOBS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data


def _record(spec: ClusterSpec, system: str, job_ids: list[str], names: dict[str, str],
            next_index: int) -> None:
    if job_ids:
        old = recorded(Path(spec.cluster_dir))
        write_private(Path(spec.cluster_dir) / JOBS_FILE, json.dumps({
            "system": system, "jobs": [*old.get("jobs", []), *job_ids],
            "names": {**old.get("names", {}), **names}, "next_index": next_index}))


def cancel_named(cluster_dir: Path, worker_names: Iterable[str]) -> None:
    """Cancel the one-worker jobs of these workers and drop them from the record."""
    data = recorded(cluster_dir)
    gone = set(worker_names)
    ids = [job for job, name in data.get("names", {}).items() if name in gone]
    if ids:
        cancel(ids, data["system"])
        data["jobs"] = [job for job in data["jobs"] if job not in ids]
        data["names"] = {job: name for job, name in data["names"].items() if job not in ids}
        write_private(cluster_dir / JOBS_FILE, json.dumps(data))


def cancel(job_ids: list[str], system: str) -> None:
    """One cancel command (scancel, qdel, bkill) for all of them; jobs already gone are fine."""
    known = batch.by_name(system)
    if job_ids and known is not None:
        command = [*shlex.split(_job_class(known).cancel_command), *job_ids]
        subprocess.run(command, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


def cancel_recorded(cluster_dir: Path) -> list[str]:
    """Cancel the worker jobs a cluster submitted (stop-dask-cluster); returns their ids."""
    path = cluster_dir / JOBS_FILE
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    cancel(recorded["jobs"], recorded["system"])
    path.unlink(missing_ok=True)
    return list(recorded["jobs"])
