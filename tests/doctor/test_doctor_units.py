"""The doctor's parts and start's up-front path checks, on this machine (no root needed).

NFS, Lustre, GPFS, BeeGFS and CephFS cannot be mounted here (no servers, no kernel modules), so
their detection is tested on mount-table lines in the kernel's format; FUSE is mounted for real
in test_doctor_nodes.py.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daskhpc.doctor import findings, mounts
from daskhpc.doctor.hint import command_line
from daskhpc.doctor.paths import check_start_paths, directory_problem, file_problem
from daskhpc.errors import DaskhpcError

REPO = Path(__file__).resolve().parents[2]

# /proc/mounts lines as Linux writes them on cluster nodes (sources as each filesystem names
# them: Lustre's NIDs, GPFS's device, BeeGFS's fixed "beegfs_nodev", ...).
CLUSTER_NODE_MOUNTS = r"""
/dev/sda2 / xfs rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0
/dev/nvme0n1p1 /local xfs rw,relatime,attr2,inode64,noquota 0 0
nas01:/export/home /home nfs4 rw,relatime,vers=4.2,rsize=1048576,wsize=1048576,hard,proto=tcp 0 0
nas02:/apps /opt/apps nfs ro,relatime,vers=3,rsize=65536,wsize=65536,hard,proto=tcp 0 0
172.60.0.1@o2ib,172.60.0.2@o2ib:172.60.0.3@o2ib:/scratch /scratch lustre rw,flock,lazystatfs 0 0
gpfs1 /gpfs/projects gpfs rw,relatime 0 0
beegfs_nodev /mnt/beegfs beegfs rw,relatime,cfgFile=/etc/beegfs/beegfs-client.conf 0 0
10.0.0.5:6789,10.0.0.6:6789:/ /mnt/cephfs ceph rw,relatime,name=hpc,acl 0 0
user@login:/data /home/user/remote fuse.sshfs rw,nosuid,nodev,relatime,user_id=1000 0 0
/dev/sdb1 /media/usb fuseblk rw,nosuid,nodev,relatime,user_id=0,default_permissions 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev,size=16g 0 0
/dev/sdc1 /local/with\040space ext4 rw,relatime 0 0
"""


@pytest.mark.parametrize(("path", "fstype", "shared"), [
    ("/home/alice/dask", "nfs4", True),
    ("/opt/apps/bin", "nfs", True),
    ("/scratch/alice", "lustre", True),
    ("/gpfs/projects/x", "gpfs", True),
    ("/mnt/beegfs/alice", "beegfs", True),
    ("/mnt/cephfs", "ceph", True),
    ("/home/user/remote/x", "fuse.sshfs", True),
    ("/media/usb/dir", "fuseblk", False),
    ("/tmp/daskhpc", "tmpfs", False),
    ("/local/alice", "xfs", False),
    ("/local/with space/x", "ext4", False),
    ("/scratchpad", "xfs", False),  # a prefix of the name is not the mount point
])
def test_mount_table_classifies_node_local_and_shared(path: str, fstype: str,
                                                      shared: bool) -> None:
    mount = mounts.mount_of(path, mounts.parse(CLUSTER_NODE_MOUNTS))
    assert mount is not None
    assert (mount.fstype, mount.shared) == (fstype, shared)


def test_this_machines_mount_table() -> None:
    table = mounts.parse(Path("/proc/self/mounts").read_text())
    assert any(mount.point == "/" for mount in table)
    found = mounts.filesystem_of(Path("/proc/nope/deeper"))
    assert found is not None and (found.point, found.fstype) == ("/proc", "proc")


def test_path_checks_name_the_path_and_the_reason(tmp_path: Path) -> None:
    assert directory_problem(tmp_path / "new" / "deeper") is None
    assert file_problem(tmp_path / "x.json") is None
    assert directory_problem(Path("/proc/nope")) == (
        "cannot create directories in /proc (to create /proc/nope): No such file or directory")
    (tmp_path / "file").write_text("")
    assert directory_problem(tmp_path / "file" / "x") == f"{tmp_path / 'file'} is not a directory"
    assert file_problem(tmp_path) == f"{tmp_path} is a directory"
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]  # the checks left nothing


def test_findings_about_several_nodes_become_one_line() -> None:
    fix = "ssh-copy-id"
    merged = findings.merge([findings.problem("remote start", "no key", fix, [f"node{i:02d}"])
                             for i in range(2, 18)] + [findings.ok("network", "fine")])
    assert len(merged) == 2
    assert findings.line(merged[0]) == (
        "problem  remote start:      node[02-17]: no key  fix: ssh-copy-id")
    assert json.loads(findings.as_json(merged))["problems"] == 1


def start(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(REPO / "src")}
    env.pop("DASKHPC_STATE_DIR", None)
    return subprocess.run([sys.executable, "-m", "daskhpc", "start", "--launcher", "local",
                           *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("--scheduler-file", "/proc/nope/x.json",
     "--scheduler-file /proc/nope/x.json: cannot create directories in /proc (to create "
     "/proc/nope): No such file or directory; give a path in a directory of yours"),
    ("--local-directory", "/proc/nope",
     "--local-directory /proc/nope: cannot create directories in /proc (to create /proc/nope): "
     "No such file or directory; give a node-local directory that exists on every node"),
])
def test_start_refuses_bad_paths_up_front(tmp_path: Path, option: str, value: str,
                                          expected: str) -> None:
    result = start(tmp_path, option, value)
    assert result.returncode == 2
    assert result.stderr == f"start-dask-cluster: error: {expected}\n"
    assert not (tmp_path / ".local" / "state" / "daskhpc" / "clusters").exists()  # nothing ran
    began = time.monotonic()  # the checks themselves (the command adds Python's start)
    with pytest.raises(DaskhpcError):
        check_start_paths(Path("/proc/nope/x.json"), None, True)
    with pytest.raises(DaskhpcError):
        check_start_paths(tmp_path / "x.json", "/proc/nope", True)
    assert time.monotonic() - began < 0.5  # milliseconds on a quiet machine


def test_doctor_alone_on_this_machine(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(REPO / "src")}
    for name in ("SLURM_JOB_NODELIST", "SLURM_NODELIST", "PBS_NODEFILE", "LSB_DJOB_HOSTFILE",
                 "LSB_HOSTS", "PE_HOSTFILE", "DASKHPC_STATE_DIR", "JUPYTERHUB_SERVICE_PREFIX"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-m", "daskhpc", "doctor", "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    data = json.loads(result.stdout)
    assert result.returncode == 0 and data["problems"] == 0, result.stdout
    assert data["checks"][0]["found"].startswith("no batch job")
    assert not (tmp_path / ".local").exists()  # its token and folders are gone


# A Jupyter server stand-in: a process named like one, running the doctor as its child (as a
# terminal or kernel of that server would).
SERVER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[2:]))"


def doctor_under_jupyterhub(home: Path, server_python: str,
                            **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "PYTHONPATH": str(REPO / "src"),
           "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/", **extra}
    return subprocess.run([server_python, "-c", SERVER, "jupyter-lab", sys.executable, "-m",
                           "daskhpc", "doctor"], env=env, capture_output=True, text=True,
                          timeout=120)


def lines(result: subprocess.CompletedProcess[str], status: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(status)]


def test_jupyter_server_proxy_missing_from_the_servers_environment(tmp_path: Path) -> None:
    system_python = "/usr/bin/python3"
    if not Path(system_python).exists() or subprocess.run(
            [system_python, "-c", "import jupyter_server_proxy"], capture_output=True
    ).returncode == 0:
        pytest.skip("needs a Python without jupyter-server-proxy at /usr/bin/python3")
    result = doctor_under_jupyterhub(tmp_path, system_python)
    assert result.returncode == 1
    [line] = lines(result, "problem")
    assert line.startswith(f"problem  dashboard:         jupyter-server-proxy is not in the "
                           f"Jupyter server's environment ({system_python}); it is in this "
                           "one, the kernel's, where it does nothing")
    assert f"fix: {system_python} -m pip install jupyter-server-proxy" in line


def test_servers_proxy_with_and_without_the_allow_list_hook(tmp_path: Path) -> None:
    config = tmp_path / "jupyter-config"
    config.mkdir()
    result = doctor_under_jupyterhub(tmp_path, sys.executable,
                                     JUPYTER_CONFIG_DIR=str(config))
    [line] = lines(result, "warning")
    assert "does not use daskhpc.proxy_allowlist" in line and "fix: add the allow-list" in line
    (config / "jupyter_server_config.py").write_text(
        "from daskhpc.proxy_allowlist import allowed\nc.ServerProxy.host_allowlist = allowed\n")
    result = doctor_under_jupyterhub(tmp_path, sys.executable, JUPYTER_CONFIG_DIR=str(config))
    assert result.returncode == 0 and lines(result, "warning") == [], result.stdout
    assert "has jupyter-server-proxy and the allow-list hook" in result.stdout


def test_http_proxy_without_no_proxy_for_the_nodes(tmp_path: Path) -> None:
    result = doctor_under_jupyterhub(tmp_path, sys.executable, http_proxy="http://proxy:3128",
                                     no_proxy="login1,.example.org")
    [line] = [line for line in lines(result, "warning") if "http_proxy" in line]
    assert "http_proxy is set (http://proxy:3128) and no_proxy does not name the node" in line
    covered = doctor_under_jupyterhub(tmp_path, sys.executable, http_proxy="http://proxy:3128",
                                      no_proxy=f"login1,{socket.gethostname()}")
    assert "http_proxy is set" not in covered.stdout


def test_low_open_file_limit(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(REPO / "src")}
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    result = subprocess.run(
        [sys.executable, "-m", "daskhpc", "doctor", "--launcher", "local"], env=env,
        capture_output=True, text=True, timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (200, hard)))
    assert result.returncode == 0  # a warning: small clusters still start
    assert ("warning  limits:            open-file limit 200 here, the scheduler needs about 258 "
            "for 1 workers  fix: ulimit -n 258 before starting") in result.stdout


def test_the_doctor_line_repeats_what_start_was_asked() -> None:
    from daskhpc.cli import parse_options

    args = parse_options("start", ["--hosts", "node[1-3]", "--interface", "ib0",
                                   "--timeout", "30", "--no-tls"])
    assert command_line(args) == ("dask-cluster-doctor --hosts 'node[1-3]' --interface ib0 "
                                  "--no-tls")


def test_a_ca_others_can_open_is_a_problem_with_the_way_out(tmp_path: Path) -> None:
    ca = tmp_path / ".local" / "state" / "daskhpc" / "ca"
    ca.mkdir(parents=True)
    ca.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run([sys.executable, "-m", "daskhpc", "doctor", "--launcher", "local"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert (f"problem  certificates:      others can open {ca}, your CA: its key may have been "
            f"read  fix: with no cluster running: rm -r {ca} (the next start makes a new CA)"
            ) in result.stdout
