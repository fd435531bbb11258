"""Planning: sizing, addresses and the messages bad input gets."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from daskhpc.cli import parse_options
from daskhpc.cluster import plan
from daskhpc.cluster.allocation import Allocation, Node
from daskhpc.cluster.spec import ClusterSpec
from daskhpc.errors import DaskhpcError

GIB = 2**30
HERE = socket.gethostname()


def options(*argv: str):
    return parse_options("start", argv)


def build(tmp_path: Path, allocation: Allocation, *argv: str, launcher: str = "ssh"):
    return plan.build_spec(options(*argv), allocation, launcher, "test-id", tmp_path, None,
                           lambda hosts: False)


def this_node(cores: int = 16, memory: int = 64 * GIB) -> Allocation:
    return Allocation("hosts", (Node(HERE, cores, cores, memory),))


def test_default_sizing_is_about_sqrt_cores(tmp_path: Path):
    spec = build(tmp_path, this_node(cores=16, memory=64 * GIB))
    (node,) = spec.nodes
    assert (node.workers, node.threads_per_worker, node.memory_limit) == (4, 4, 16 * GIB)
    assert node.local
    assert spec.scheduler_host == "127.0.0.1"  # every worker is on this machine
    assert spec.scheduler_port != spec.dashboard_port


def test_options_override_sizing(tmp_path: Path):
    spec = build(tmp_path, this_node(), "--workers-per-node", "2", "--threads-per-worker", "3",
                 "--memory-limit", "10GiB", "--min-workers", "1", "--no-nanny")
    (node,) = spec.nodes
    assert (node.workers, node.threads_per_worker, node.memory_limit) == (2, 3, 10 * GIB)
    assert spec.min_workers == 1
    assert spec.nanny is False
    assert ClusterSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--memory-limit", "lots"], "--memory-limit 'lots' is not a size"),
        (["--memory-limit", "0"], "is not a size"),
        (["--memory-limit", "40GiB", "--workers-per-node", "2"], "more than the 64.00 GiB"),
        (["--min-workers", "5", "--workers-per-node", "4"], "--min-workers 5 is more than"),
        (["--interface", "nonexistent0"], "interface 'nonexistent0' has no IPv4 address"),
    ],
)
def test_bad_options(tmp_path: Path, argv, message):
    with pytest.raises(DaskhpcError, match=message):
        build(tmp_path, this_node(), *argv)


def test_unknown_host_is_named(tmp_path: Path):
    allocation = Allocation("hosts", (Node("no-such-node.invalid", 2, 2, None),))
    with pytest.raises(DaskhpcError, match=r"unknown host 'no-such-node\.invalid'"):
        build(tmp_path, allocation)


def test_local_launcher_refuses_other_nodes(tmp_path: Path):
    allocation = Allocation("hosts", (Node(HERE, 2, 2, None), Node("elsewhere", 2, 2, None)))
    with pytest.raises(DaskhpcError, match="nodes include elsewhere; use --launcher ssh"):
        build(tmp_path, allocation, launcher="local")


def test_workers_retire_before_the_job_ends(tmp_path: Path):
    import time

    now = time.time()
    spec = build(tmp_path, Allocation("slurm", this_node().nodes, "7", now + 3600))
    assert spec.worker_end_time is not None
    assert now + 3600 - 130 < spec.worker_end_time <= now + 3600 - 120
    short = build(tmp_path, Allocation("slurm", this_node().nodes, "7", now + 100))
    assert short.worker_end_time is not None and short.worker_end_time < now + 100
    with pytest.raises(DaskhpcError, match="ends in"):
        build(tmp_path, Allocation("slurm", this_node().nodes, "7", now + 10))


def test_scheduler_file_expands_home_and_variables(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WORK", str(tmp_path / "work"))
    assert build(tmp_path, this_node()).scheduler_file == str(tmp_path / "dask-scheduler.json")
    spec = build(tmp_path, this_node(), "--scheduler-file", "$WORK/s.json")
    assert spec.scheduler_file == str(tmp_path / "work" / "s.json")
    spec = build(tmp_path, this_node(), "--scheduler-file", "~/x.json")
    assert spec.scheduler_file == str(tmp_path / "x.json")
