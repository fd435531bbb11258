"""start/status/stop on this machine alone (local launcher): no root needed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cluster_helpers import PYTHON, User, recorded_alive


def test_start_compute_status_stop(user: User):
    spec = user.start("--workers-per-node", "2", "--threads-per-worker", "1")
    assert spec["launcher"] == "local"
    assert spec["protocol"] == "tls"
    scheduler_file = Path(spec["scheduler_file"])
    assert scheduler_file == user.home / "dask-scheduler.json"
    assert scheduler_file.stat().st_mode & 0o777 == 0o600
    assert Path(spec["cluster_dir"]).stat().st_mode & 0o777 == 0o700

    result = user.compute(spec)
    assert result["sum"] == 5050
    assert len(result["workers"]) == 2
    assert all(address.startswith("tls://127.0.0.1:") for address in result["workers"])

    status = user.dask("status", "--json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["id"] == spec["cluster_id"]
    assert info["state"] == "running"
    assert info["workers"] == 2 and info["threads"] == 2
    assert info["nodes"][0]["host"] == socket.gethostname()
    assert "workers" in user.dask("status").stdout

    stop = user.dask("stop")
    assert stop.returncode == 0, stop.stderr
    assert "no process of it is left" in stop.stdout
    assert recorded_alive(Path(spec["cluster_dir"])) == []
    assert not scheduler_file.exists()
    # worker scratch is node-local and goes with the cluster
    assert not list(Path("/tmp").glob(f"daskhpc-{spec['cluster_id']}-*"))
    after = user.dask("status")
    assert after.returncode != 0
    assert "no cluster is running" in after.stderr


def test_dead_cluster_shows_no_workers_and_status_fails(user: User):
    spec = user.start("--workers-per-node", "2", "--threads-per-worker", "1")
    supervisor = json.loads((Path(spec["cluster_dir"]) / "supervisor.json").read_text())["pid"]
    os.kill(supervisor, signal.SIGKILL)  # the scheduler runs inside it
    deadline = time.monotonic() + 30
    while recorded_alive(Path(spec["cluster_dir"])) and time.monotonic() < deadline:
        time.sleep(0.2)

    status = user.dask("status", "--json")
    assert status.returncode == 3, "not running, as systemctl status says it"
    info = json.loads(status.stdout)
    assert info["state"].startswith("dead")
    assert (info["workers"], info["threads"], info["memory"]) == (0, 0, 0)
    assert [node["workers"] for node in info["nodes"]] == [0]
    text = user.dask("status")
    assert text.returncode == 3
    assert "dead" in text.stdout and "0/2" in text.stdout

    assert user.dask("stop").returncode == 0
    assert recorded_alive(Path(spec["cluster_dir"])) == []


# A process with other threads running, as a Jupyter kernel has (where the Python API runs the
# start). Forking such a process copies its locks in whatever state other threads left them, so
# the supervisor must be a fresh interpreter, not a fork of the process that starts it.
THREADED_START = """
import sys, threading, time
from daskhpc.cli import run_command
def busy():
    while True:
        time.sleep(0.001)
for _ in range(4):
    threading.Thread(target=busy, daemon=True).start()
sys.exit(run_command("start", ["--workers-per-node", "1", "--timeout", "60"]))
"""


def test_start_from_a_threaded_process_runs_a_fresh_supervisor(user: User):
    result = subprocess.run([PYTHON, "-c", THREADED_START], env=user.env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "is running: 1 workers" in result.stdout
    spec = user.latest_spec()
    supervisor = json.loads((Path(spec["cluster_dir"]) / "supervisor.json").read_text())["pid"]
    argv = Path(f"/proc/{supervisor}/cmdline").read_bytes().split(b"\0")
    assert argv[1:3] == [b"-m", b"daskhpc.cluster.head.detach"], argv  # not a fork of the caller
    assert os.getsid(supervisor) == supervisor  # its own session
    assert user.compute(spec)["sum"] == 5050
    assert user.dask("stop").returncode == 0


def test_no_tls_warns_and_uses_tcp(user: User):
    result = user.dask("start", "--no-tls", env={"JUPYTERHUB_SERVICE_PREFIX": "/user/alice/"})
    assert result.returncode == 0, result.stderr
    assert "warning: --no-tls" in result.stderr
    spec = user.latest_spec()
    assert spec["scheduler_host"] == "127.0.0.1"
    proxied = (f"/user/alice/proxy/127.0.0.1:{spec['dashboard_port']}/"
               f"{spec['dashboard_secret']}/status")
    assert f"via JupyterHub: {proxied}" in result.stdout
    assert user.compute(spec)["sum"] == 5050
    assert user.dask("stop").returncode == 0
    assert recorded_alive(Path(spec["cluster_dir"])) == []


def test_stale_scheduler_file_is_replaced_and_live_one_refused(user: User):
    with socket.socket() as probe:  # a port nobody listens on: a dead cluster's address
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    scheduler_file = user.home / "dask-scheduler.json"
    scheduler_file.write_text(json.dumps({"address": f"tcp://127.0.0.1:{dead_port}"}))
    result = user.dask("start", "--no-tls")
    assert result.returncode == 0, result.stderr
    assert "removing stale scheduler file" in result.stderr
    assert str(dead_port) not in scheduler_file.read_text()
    first = user.latest_spec()

    again = user.dask("start", "--no-tls")
    assert again.returncode != 0
    assert f"cluster {first['cluster_id']} is running with scheduler file" in again.stderr
    assert "--scheduler-file" in again.stderr
    assert len(user.clusters()) == 1  # the refused start left nothing behind

    second = user.dask("start", "--no-tls", "--scheduler-file", str(user.home / "two.json"))
    assert second.returncode == 0, second.stderr
    status = json.loads(user.dask("status", "--all", "--json").stdout)
    assert len(status) == 2
    assert user.dask("stop", "--all").returncode == 0
    for cluster in user.clusters():
        assert recorded_alive(cluster) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hosts", "node[01-"], "--hosts='node[01-' is not a valid host list"),
        (["--hostfile", "/nonexistent/hosts"], "cannot read /nonexistent/hosts"),
        (["--memory-limit", "lots"], "--memory-limit 'lots' is not a size"),
        (["--workers-per-node", "0"], "must be 1 or more"),
        (["--threads-per-worker", "many"], "is not a whole number"),
        (["--min-workers", "99"], "--min-workers 99 is more than"),
        (["--hosts", "no-such-node.invalid"], "unknown host 'no-such-node.invalid'"),
        (["--interface", "nonexistent0"], "interface 'nonexistent0' has no IPv4 address"),
        (["--launcher", "local", "--hosts", "localhost,elsewhere.invalid"], "--launcher ssh"),
    ],
)
def test_bad_input_one_line_and_nothing_left(user: User, argv, message):
    result = user.dask("start", *argv, env={"SLURM_JOB_NODELIST": ""})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert user.clusters() == []
    assert not (user.home / "dask-scheduler.json").exists()


def test_malformed_slurm_nodelist(user: User):
    result = user.dask("start", env={"SLURM_JOB_NODELIST": "node[1-"})
    assert result.returncode != 0
    assert "SLURM_JOB_NODELIST='node[1-' is not a valid host list" in result.stderr
    assert user.clusters() == []
