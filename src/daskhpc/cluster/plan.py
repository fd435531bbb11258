"""StartOptions + allocation -> ClusterSpec: sizing, addresses, ports, lifetimes; checks input."""

from __future__ import annotations

import math
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import daskhpc
from daskhpc import paths
from daskhpc.cluster import network
from daskhpc.cluster.batch.base import Allocation, Node
from daskhpc.cluster.batch.hosts import local_memory
from daskhpc.cluster.node import scratch
from daskhpc.cluster.spec import ClusterSpec, NodeSpec
from daskhpc.errors import DaskhpcError
from daskhpc.options import StartOptions
from daskhpc.units import format_bytes, parse_bytes

# The dashboard's path starts with a random segment (see ClusterSpec.dashboard_secret).
DASHBOARD_SECRET_BYTES = 18


def default_workers(cores: int) -> int:
    """About sqrt(cores) processes: enough to sidestep the GIL, few enough to share memory."""
    return max(1, int(math.sqrt(cores)))


def node_spec(node: Node, options: StartOptions, memory_limit: Optional[int],
              local: bool) -> NodeSpec:
    workers = options.workers_per_node or default_workers(node.cores)
    threads = options.threads_per_worker or max(1, node.cores // workers)
    memory = node.memory_bytes or local_memory()
    if memory_limit is None:
        per_worker = memory // workers
    elif memory_limit * workers > memory:
        raise DaskhpcError(
            f"--memory-limit {options.memory_limit} x {workers} workers is more than the "
            f"{format_bytes(memory)} of {node.host}; lower --memory-limit or --workers-per-node"
        )
    else:
        per_worker = memory_limit
    return NodeSpec(node.host, workers, threads, per_worker, local)


def parse_memory(text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    value = parse_bytes(text)
    if value is None:
        raise DaskhpcError(f"--memory-limit {text!r} is not a size like 4GiB or 500MB")
    return value


def worker_start_method() -> str:
    """How nannies start their worker process: fork unless the user's dask setting says otherwise.

    Dask's default, spawn, makes every worker import distributed a second time (0.5-3 s on a
    busy node, on the path to "all workers connected"); fork reuses the nanny's imports.
    """
    return os.environ.get("DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD") or "fork"


def worker_end_time(allocation: Allocation, now: float, margin: float) -> Optional[float]:
    """When workers must be gone: a margin before the job ends (at most a fifth of what is left)."""
    if allocation.end_time is None:
        return None
    remaining = allocation.end_time - now
    if remaining < 30:
        raise DaskhpcError(
            f"the {allocation.kind} job {allocation.job_id or ''} ends in {remaining:.0f} s: "
            "too late to start a cluster; request a longer job"
        )
    return allocation.end_time - min(margin, remaining / 5)


def scheduler_file(option: Optional[str]) -> Path:
    if option is None:
        return paths.default_scheduler_file().absolute()
    return Path(os.path.expandvars(option)).expanduser().absolute()


def build_spec(options: StartOptions, allocation: Allocation, launcher: str,
               cluster_id: str, cluster_dir: Path, tls_dir: Optional[Path],
               has_infiniband: Callable[[Sequence[str]], bool]) -> ClusterSpec:
    memory_limit = parse_memory(options.memory_limit)
    locals_ = {node.host: network.is_this_machine(node.host) for node in allocation.nodes}
    remote = [host for host, here in locals_.items() if not here]
    if remote and launcher == "local":
        raise DaskhpcError(
            f"--launcher local runs on this machine only, but the nodes include {remote[0]}; "
            "use --launcher ssh"
        )
    nodes = tuple(node_spec(node, options, memory_limit, locals_[node.host])
                  for node in allocation.nodes)
    total = sum(node.workers for node in nodes)
    if options.min_workers is not None and options.min_workers > total:
        raise DaskhpcError(
            f"--min-workers {options.min_workers} is more than the {total} workers planned; "
            "lower it or add nodes"
        )
    host = network.scheduler_address(options.interface, remote, has_infiniband)
    scheduler_port = network.free_port(host)
    dashboard_port = network.free_port(host)
    while dashboard_port == scheduler_port:
        dashboard_port = network.free_port(host)
    now = time.time()
    return ClusterSpec(
        cluster_id=cluster_id,
        cluster_dir=str(cluster_dir),
        created=now,
        launcher=launcher,
        protocol="tcp" if tls_dir is None else "tls",
        scheduler_host=host,
        scheduler_port=scheduler_port,
        dashboard_port=dashboard_port,
        dashboard_secret=secrets.token_urlsafe(DASHBOARD_SECRET_BYTES),
        scheduler_file=str(scheduler_file(options.scheduler_file)),
        nodes=nodes,
        python=sys.executable,
        pythonpath=str(Path(daskhpc.__file__).resolve().parents[1]),
        interface=options.interface,
        local_directory=options.local_directory,
        scheduler_directory=str(scratch.scheduler_directory(options.local_directory, cluster_id)),
        death_timeout=options.death_timeout,
        worker_end_time=worker_end_time(allocation, now, options.lifetime_margin),
        nanny=options.nanny,
        min_workers=total if options.min_workers is None else options.min_workers,
        timeout=options.timeout,
        tls_dir=None if tls_dir is None else str(tls_dir),
        worker_start_method=worker_start_method(),
    )
