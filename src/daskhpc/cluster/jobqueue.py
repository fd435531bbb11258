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
import subprocess
from pathlib import Path
from typing import Any, Mapping

from daskhpc.cluster import batch, names
from daskhpc.cluster.batch.base import BatchSystem
from daskhpc.cluster.spec import ClusterSpec
from daskhpc.errors import DaskhpcError
from daskhpc.files import write_private
from daskhpc.units import format_bytes

JOBS_FILE = "jobs.json"


def batch_system(environ: Mapping[str, str]) -> BatchSystem:
    """DASKHPC_JOBQUEUE if set (site setting), else the first batch system whose submit command
    is here (daskhpc.cluster.batch)."""
    chosen = environ.get("DASKHPC_JOBQUEUE", "").strip().lower()
    if chosen:
        system = batch.by_name(chosen)
        if system is None:
            known = ", ".join(system.name for system in batch.systems())
            raise DaskhpcError(f"DASKHPC_JOBQUEUE={chosen!r} is not one of {known}; "
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


def _job_size(spec: ClusterSpec, system: str) -> dict[str, Any]:
    """Per job: the site's dask-jobqueue settings, else what one node of this cluster has."""
    import dask

    node = spec.nodes[0]
    size: dict[str, Any] = {}
    if dask.config.get(f"jobqueue.{system}.cores", None) is None:
        size["cores"] = node.workers * node.threads_per_worker
        size["processes"] = node.workers
    if dask.config.get(f"jobqueue.{system}.memory", None) is None:
        size["memory"] = format_bytes(max(node.memory_limit, 2**30) * node.workers)
    return size


def submit_jobs(spec: ClusterSpec, count: int, environ: Mapping[str, str]) -> list[str]:
    """Submit `count` worker jobs for this cluster; returns their job ids (recorded for stop)."""
    import asyncio  # here, not at the top: every start imports this module, few use --jobs

    system = batch_system(environ)
    job_class = _job_class(system)
    security = None
    if spec.tls_dir:
        from daskhpc.cluster.security import load_cluster_tls

        security = load_cluster_tls(Path(spec.tls_dir)).security("worker")
    log_directory = Path(spec.cluster_dir) / "logs" / "jobs"
    log_directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    job_ids: list[str] = []

    async def submit(index: int) -> str:
        job = job_class(
            scheduler=spec.scheduler_address,
            name=names.job_worker(index, spec.cluster_id),
            job_name=f"dask-{spec.cluster_id}",
            protocol=spec.protocol,
            security=security,
            interface=spec.interface,
            death_timeout=spec.death_timeout,
            nanny=spec.nanny,
            python=spec.python,
            # node-local scratch, expanded on the worker's node
            local_directory=spec.local_directory or "${TMPDIR:-/tmp}",
            log_directory=str(log_directory),
            **_job_size(spec, system.name),
        )
        await job.start()
        return str(job.job_id)

    try:
        for index in range(count):
            job_ids.append(asyncio.run(submit(index)))
    except (RuntimeError, ValueError, OSError) as error:
        cancel(job_ids, system)
        raise DaskhpcError(f"submitting worker job {len(job_ids) + 1} of {count} failed "
                           f"({str(error).strip().splitlines()[-1]}); the cluster still "
                           "runs without them") from None
    finally:
        _record(spec, system, job_ids)
    return job_ids


def _record(spec: ClusterSpec, system: BatchSystem, job_ids: list[str]) -> None:
    if job_ids:
        write_private(Path(spec.cluster_dir) / JOBS_FILE,
                      json.dumps({"system": system.name, "jobs": job_ids}))


def cancel(job_ids: list[str], system: BatchSystem) -> None:
    """One cancel command (scancel, qdel, bkill) for all of them; jobs already gone are fine."""
    if job_ids:
        command = [*shlex.split(_job_class(system).cancel_command), *job_ids]
        subprocess.run(command, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


def _read_record(cluster_dir: Path) -> dict[str, Any]:
    try:
        recorded: dict[str, Any] = json.loads((cluster_dir / JOBS_FILE).read_text())
    except (OSError, ValueError):
        return {"system": "", "jobs": []}
    return recorded


def recorded_jobs(cluster_dir: Path) -> list[str]:
    """The ids of the worker jobs a cluster submitted, in submission order (job<i> = i-th)."""
    return [str(job) for job in _read_record(cluster_dir)["jobs"]]


def cancel_recorded(cluster_dir: Path) -> list[str]:
    """Cancel the worker jobs a cluster submitted (stop-dask-cluster); returns their ids."""
    recorded = _read_record(cluster_dir)
    if not recorded["jobs"]:
        return []
    system = batch.by_name(recorded["system"])
    if system is not None:
        cancel(recorded["jobs"], system)
    (cluster_dir / JOBS_FILE).unlink(missing_ok=True)
    return list(recorded["jobs"])
