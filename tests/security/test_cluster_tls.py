"""Clusters started by start-dask-cluster: TLS with every launcher, private to their user."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from security_helpers import Shell
from testbed import mpi as mpi_testbed
from testbed.nodes import NodeBed
from testbed.scratch import cluster_ids, scratch_left

from daskhpc import paths, proxy_allowlist
from daskhpc.cluster.tls import current as current_tls
from daskhpc.cluster.tls import user as user_tls
from daskhpc.cluster.tls.material import issue, load_authority

PYTHON = sys.executable

# What a notebook in the registered kernel runs: no TLS code, only the scheduler file. The
# environment's .pth line runs first (here: by hand, the dev venv has no such line).
NOTEBOOK = """
import daskhpc.client_config; daskhpc.client_config.apply()
import json, os
from dask.distributed import Client
with Client(scheduler_file=os.path.expanduser("~/dask-scheduler.json"), timeout=30) as client:
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    total = client.submit(sum, range(101)).result()
    scheduler = client.scheduler.address
print(json.dumps({"scheduler": scheduler, "workers": workers, "sum": total}))
"""

# Two clients the scheduler must refuse: one with another cluster's certificates (made on the
# spot), one on plain tcp://. One interpreter for both: each start costs an import of distributed.
REFUSED_CLIENTS = """
import json, sys, tempfile
from pathlib import Path
from distributed import Client
from daskhpc.cluster.tls.material import create_standalone_tls
tls = create_standalone_tls(Path(tempfile.mkdtemp()) / "tls")
attempts = {
    "foreign certificates": (sys.argv[1], tls.security()),
    "plain tcp": (sys.argv[1].replace("tls://", "tcp://"), None),
}
outcomes = {}
for name, (address, security) in attempts.items():
    try:
        Client(address, security=security, timeout="3s").close()
    except OSError as error:
        outcomes[name] = "refused: " + type(error).__name__
    else:
        outcomes[name] = "CONNECTED"
print(json.dumps(outcomes))
"""


# One interpreter, configured once by the hook, computing on every cluster named (scheduler
# files) in turn.
EVERY_CLUSTER = """
import daskhpc.client_config; daskhpc.client_config.apply()
import json, sys
from dask.distributed import Client
seen = {}
for scheduler_file in sys.argv[1:]:
    with Client(scheduler_file=scheduler_file, timeout=30) as client:
        seen[client.scheduler.address] = client.submit(sum, range(101)).result()
print(json.dumps(seen))
"""

# A client with the TLS files in argv[1] (a CA, client.pem, client-key.pem), tried on every
# cluster named (scheduler files) after it.
CLIENT_WITH = """
import json, sys
from pathlib import Path
from distributed import Client
from daskhpc.cluster.tls.material import TLSFiles
security = TLSFiles(Path(sys.argv[1])).security()
outcomes = []
for scheduler_file in sys.argv[2:]:
    address = json.loads(Path(scheduler_file).read_text())["address"]
    try:
        with Client(address, security=security, timeout="3s") as client:
            outcomes.append(client.submit(sum, range(101)).result())
    except OSError as error:
        outcomes.append("refused: " + type(error).__name__)
print(json.dumps(outcomes))
"""


def _json_line(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _assert_tls_cluster(shell: Shell, node_addresses: set[str]) -> None:
    spec = shell.latest_spec()
    assert spec["protocol"] == "tls"
    seen = _json_line(shell.python(NOTEBOOK))
    assert seen["sum"] == 5050
    assert seen["scheduler"].startswith("tls://")
    assert seen["workers"], "no worker connected"
    assert all(address.startswith("tls://") for address in seen["workers"]), seen["workers"]
    hosts = {address.removeprefix("tls://").rsplit(":", 1)[0] for address in seen["workers"]}
    assert hosts <= node_addresses, hosts
    outcomes = _json_line(shell.python(REFUSED_CLIENTS, seen["scheduler"]))
    assert all(outcome.startswith("refused") for outcome in outcomes.values()), outcomes


def _assert_no_secrets_on_command_lines(bed: NodeBed, shell: Shell) -> None:
    """Every node's Dask processes: key paths only, never key material, in what `ps` shows."""
    tls_dir = shell.latest_spec()["tls_dir"]
    workers = [line for lines in bed.processes("distributed.cli.dask_worker").values()
               for line in lines if str(shell.home) in line]
    assert workers, "no worker processes found on the nodes"
    for line in workers:
        assert f"--tls-key {tls_dir}/worker-key.pem" in line
        assert "PRIVATE KEY" not in line and "BEGIN" not in line


# local: test_local_launcher_runs_tls below (no simulated nodes needed); srun: its own tests
# with real Slurm jobs (tests/cluster/test_srun_slurm.py) check that its workers are tls://.
@pytest.mark.ssh_nodes
@pytest.mark.parametrize("launcher", ["ssh", pytest.param("mpi", marks=pytest.mark.mpi)])
def test_every_launcher_runs_tls_over_the_nodes(
    launcher: str, node_bed: NodeBed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra_env: dict[str, str] = {}
    hosts = [node.hostname for node in node_bed.nodes]
    if launcher == "mpi":
        if mpi_testbed.missing_requirements():
            pytest.skip(mpi_testbed.missing_requirements())
        extra_env = mpi_testbed.across_nodes_env(node_bed)
    shell = Shell(tmp_path / "home", node_bed.nodes[0], node_bed.ssh_command, extra_env)
    shell.home.mkdir()
    started = shell.daskhpc("start", "--launcher", launcher, "--hosts", ",".join(hosts),
                            "--workers-per-node", "1", "--threads-per-worker", "1")
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        _assert_tls_cluster(shell, {node.address for node in node_bed.nodes})
        _assert_no_secrets_on_command_lines(node_bed, shell)
        # The user's Jupyter server may proxy to the cluster's nodes (their dashboards)...
        monkeypatch.setenv("HOME", str(shell.home))
        for variable in ("DASKHPC_STATE_DIR", "XDG_STATE_HOME"):
            monkeypatch.delenv(variable, raising=False)
        scheduler_host = shell.latest_spec()["scheduler_host"]
        assert proxy_allowlist.cluster_hosts() >= {*hosts, scheduler_host}
    finally:
        stopped = shell.daskhpc("stop", "--all")
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    # ... and to none of them once it is stopped, which leaves nothing on the nodes' disks.
    assert proxy_allowlist.cluster_hosts() == set()
    assert scratch_left(cluster_ids(shell.home)) == {}


# -- one node, and a second Unix user on it ---------------------------------------------------

@pytest.fixture(scope="module")
def other_user() -> Iterator[pwd.struct_passwd]:
    """A Unix user made for this test and removed after it (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("creating a second Unix user needs root")
    if shutil.which("useradd") is None:
        pytest.skip("useradd is missing (apt-get install passwd)")
    name = f"dhsec{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/usr/sbin/nologin", "--user-group", name], check=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False)


@pytest.fixture(scope="module")
def shared_home() -> Iterator[Path]:
    """A home that others may enter and list, as on many HPC sites (0755)."""
    home = Path(tempfile.mkdtemp(prefix="daskhpc-sec-home-"))
    home.chmod(0o755)
    control = home / "readable-by-all.txt"
    control.write_text("the other user can reach this directory\n")
    control.chmod(0o644)
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def running_local_cluster(shared_home: Path) -> Iterator[Shell]:
    shell = Shell(shared_home)
    started = shell.daskhpc("start", "--launcher", "local", "--workers-per-node", "1",
                            "--threads-per-worker", "1")
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        yield shell
    finally:
        shell.daskhpc("stop", "--all")
    assert scratch_left(cluster_ids(shell.home)) == {}


def test_local_launcher_runs_tls(running_local_cluster: Shell) -> None:
    _assert_tls_cluster(running_local_cluster, {"127.0.0.1"})  # one node: loopback


def _as(user: pwd.struct_passwd, argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.run(argv, user=user.pw_uid, group=user.pw_gid, extra_groups=[], env=env,
                          cwd="/", capture_output=True, text=True, timeout=120)


def _python_for(user: pwd.struct_passwd) -> str:
    """A Python 3.9+ the other user may run: the system's, else the test environment's."""
    check = "import sys; assert sys.version_info >= (3, 9)"
    for candidate in ("/usr/bin/python3", sys.executable):
        try:
            if _as(user, [candidate, "-c", check]).returncode == 0:
                return candidate
        except OSError:  # missing, or not executable for that user
            continue
    pytest.skip("no Python that the second user may run (system python3 missing, venv private)")


READ_ALL = """
import json, sys
readable = []
for path in sys.argv[1:]:
    try:
        open(path, "rb").read(1)
    except OSError:
        continue
    readable.append(path)
print(json.dumps(readable))
"""


def test_other_user_cannot_read_scheduler_file_keys_or_logs(
    running_local_cluster: Shell, other_user: pwd.struct_passwd, shared_home: Path
) -> None:
    spec = running_local_cluster.latest_spec()
    cluster_dir = Path(spec["cluster_dir"])
    state = cluster_dir.parents[1]  # the user's CA and client certificates beside the clusters
    private = [Path(spec["scheduler_file"]),
               *(p for folder in (cluster_dir, state / "ca", state / "client-tls")
                 for p in folder.rglob("*") if p.is_file())]
    names = {path.name for path in private}
    assert {"ca.pem", "ca-key.pem", "client-key.pem", "worker-key.pem",
            "scheduler-key.pem"} <= names
    assert any(path.parent.name == "logs" for path in private), "no log files found"
    control = shared_home / "readable-by-all.txt"

    python = _python_for(other_user)
    result = _as(other_user, [python, "-c", READ_ALL, str(control), *map(str, private)])

    assert _json_line(result) == [str(control)]


# Standard library only (the other user may not be able to run the test environment): what
# anyone without the cluster's files can try. TLS trusting any server, offering no certificate.
KNOCK = """
import json, socket, ssl, sys
host, port = sys.argv[1].removeprefix("tls://").rsplit(":", 1)
outcomes = {}
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
try:
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            tls.sendall(b"\\x00" * 64)
            outcomes["tls"] = "answered" if tls.recv(4096) else "closed"
except (OSError, ssl.SSLError) as error:
    outcomes["tls"] = type(error).__name__
with socket.create_connection((host, int(port)), timeout=10) as raw:
    raw.sendall(b"\\x00" * 64)
    try:
        answer = raw.recv(4096)
    except OSError:
        answer = b""
    tls_alert = answer[:1] == b"\\x15"
    outcomes["plain"] = "answered" if answer and not tls_alert else "refused"
print(json.dumps(outcomes))
"""


def test_other_user_cannot_connect(
    running_local_cluster: Shell, other_user: pwd.struct_passwd
) -> None:
    address = json.loads(Path(running_local_cluster.latest_spec()["scheduler_file"]).read_text())

    python = _python_for(other_user)
    outcomes = _json_line(_as(other_user, [python, "-c", KNOCK, address["address"]]))

    assert outcomes["tls"] in ("SSLError", "closed", "ConnectionResetError", "SSLEOFError",
                               "SSLZeroReturnError"), outcomes
    assert outcomes["plain"] == "refused", outcomes


# -- two clusters of one user at once; the upgrade from one CA per cluster --------------------

@pytest.fixture(scope="module")
def second_local_cluster(running_local_cluster: Shell) -> Iterator[Path]:
    """Another cluster of the same user, with its own scheduler file, beside the first: as the
    JupyterLab tab's NEW starts one beside the terminal's. Yields its scheduler file."""
    shell = running_local_cluster
    scheduler_file = shell.home / "second-scheduler.json"
    started = shell.daskhpc("start", "--launcher", "local", "--workers-per-node", "1",
                            "--threads-per-worker", "1", "--scheduler-file", str(scheduler_file))
    assert started.returncode == 0, started.stderr[-3000:]
    cluster_id = shell.latest_spec()["cluster_id"]
    try:
        yield scheduler_file
    finally:
        shell.daskhpc("stop", cluster_id)


def _client_of_another_user(user: pwd.struct_passwd, base: Path) -> Path:
    """That user's client certificates, as their first start makes them in their own state
    directory (made here: their account cannot run the test environment), owned by them."""
    state = base / "other-user-state"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DASKHPC_STATE_DIR", str(state))
        user_tls.cluster_tls(state / "clusters" / "theirs" / "tls", "theirs", None)
        client = paths.current_tls_link().resolve()
    for path in (state, *state.rglob("*")):
        os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
    return client


def test_one_client_configuration_reaches_both_clusters_another_users_is_refused(
    running_local_cluster: Shell, second_local_cluster: Path, other_user: pwd.struct_passwd,
    tmp_path: Path
) -> None:
    shell = running_local_cluster
    clusters = [str(shell.home / "dask-scheduler.json"), str(second_local_cluster)]

    seen = _json_line(shell.python(EVERY_CLUSTER, *clusters))

    assert list(seen.values()) == [5050, 5050], seen  # two schedulers, both computed
    theirs = _client_of_another_user(other_user, tmp_path)
    outcomes = _json_line(shell.python(CLIENT_WITH, str(theirs), *clusters))
    assert all(str(outcome).startswith("refused") for outcome in outcomes), outcomes
    assert len(outcomes) == 2


def test_a_start_after_the_upgrade_beside_a_running_old_style_cluster(tmp_path: Path) -> None:
    """The state a release with one CA per cluster left: a cluster running on a CA of its own
    (whose key was never written) with the client certificates in its directory, current-tls
    naming them, no user CA. A new start works, the hook's configuration reaches the new
    cluster, the old one is still reached with its own files, and both stop."""
    shell = Shell(tmp_path / "home")
    shell.home.mkdir()
    local = ("--launcher", "local", "--workers-per-node", "1", "--threads-per-worker", "1")
    old_file = shell.home / "old-scheduler.json"
    started = shell.daskhpc("start", *local, "--scheduler-file", str(old_file))
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        old_tls = Path(shell.latest_spec()["tls_dir"])
        state = old_tls.parents[2]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DASKHPC_STATE_DIR", str(state))
            authority = load_authority(paths.user_ca_dir())
            assert authority is not None
            issue(authority, old_tls, ("client",), authority.not_after, "old")
            shutil.rmtree(paths.user_ca_dir())  # as the old per-cluster CA: its key is gone
            shutil.rmtree(paths.client_tls_dir())
            current_tls.point_at(old_tls)

        started = shell.daskhpc("start", *local)

        assert started.returncode == 0, started.stderr[-3000:]
        assert (state / "current-tls").resolve().parent == state / "client-tls"
        assert (state / "ca" / "ca.pem").read_bytes() != (old_tls / "ca.pem").read_bytes()
        assert _json_line(shell.python(NOTEBOOK))["sum"] == 5050
        assert _json_line(shell.python(CLIENT_WITH, str(old_tls), str(old_file))) == [5050]
    finally:
        stopped = shell.daskhpc("stop", "--all")
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert not old_file.exists() and not (shell.home / "dask-scheduler.json").exists()
