"""A real conda environment without conda (rattler backend), from a local file:// channel.

The channel (tests/testbed/conda_channel.py) holds python (this machine's CPython, repacked),
pip and one pure-Python package; the Dask stack comes from the hashed PyPI lock through the
environment's Python, which is what a file with only python and pip asks for. No network but
PyPI's (the uv cache makes it local after the first session).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from install_helpers import as_nobody, make_home, tree_snapshot
from testbed import conda_channel
from testbed.install import (
    REPO,
    python_only_dir,
    run_remove,
    run_setup,
    setup_environment,
    user_environment,
    uv_bin_dir,
)
from testbed.nodes import NodeBed
from tutorial_needs import check_tutorial_outputs, run_tutorial_needs

pytestmark = [pytest.mark.install, pytest.mark.timeout(600)]

TEST_YML = """\
name: test
channels:
  - conda-forge
dependencies:
  - python 3.11.*
  - pip
  - hello-daskhpc
"""
WORKER_PYTHONS = """
import json, sys
from dask.distributed import Client
client = Client(scheduler_file=sys.argv[1], timeout=60)
pythons = client.run(lambda: __import__("sys").executable)
hosts = client.run(lambda: __import__("socket").gethostname())
print(json.dumps({"pythons": sorted(set(pythons.values())), "hosts": sorted(hosts.values())}))
"""


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> str:
    reason = conda_channel.unusable_reason()
    if reason:
        pytest.skip(f"cannot build the local conda channel: {reason}")
    return "file://" + str(conda_channel.build_channel(tmp_path_factory.mktemp("conda")))


@dataclass
class CondaInstall:
    home: Path
    before: dict[str, str]  # the home's tree before setup
    args: list[str]  # what setup was given
    output: str

    @property
    def env(self) -> Path:
        return self.home / ".local/share/daskhpc/env"


def setup(home: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    return run_setup(home, ["--yes", *args], environment=setup_environment(home))


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def conda_install(channel: str, tmp_path_factory: pytest.TempPathFactory) -> CondaInstall:
    root = tmp_path_factory.mktemp("rattler")
    home = make_home(root)
    environment_file = root / "test.yml"
    environment_file.write_text(TEST_YML)
    before = tree_snapshot(home)
    args = ["--backend", "conda", "--channel", channel, "--environment", str(environment_file)]
    result = setup(home, args)
    assert result.returncode == 0, result.stdout + result.stderr
    return CondaInstall(home, before, args, result.stdout)


def test_a_real_conda_prefix_with_its_own_python(conda_install: CondaInstall) -> None:
    build = conda_install.env.resolve()
    records = [json.loads(path.read_text())
               for path in (build / "conda-meta").glob("*.json")]
    assert sorted(record["name"] for record in records) == ["hello-daskhpc", "pip", "python"]
    assert all(record["url"].startswith("file://") for record in records)
    python = build / "bin" / "python"
    assert python.resolve().parent == build / "bin"  # the prefix's own, not a link out
    check = subprocess.run(
        [str(conda_install.env / "bin/python"), "-c",
         "import sys, hello_daskhpc, distributed, daskhpc; "
         "print(sys.prefix); print(hello_daskhpc.GREETING)"],
        capture_output=True, text=True, timeout=120, env=user_environment(conda_install.home))
    assert check.returncode == 0, check.stderr
    assert check.stdout.split("\n")[:2] == [str(conda_install.env),
                                            "hello from a conda package"]


def test_the_kernel_runs_the_conda_env(conda_install: CondaInstall, tmp_path: Path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(
        "import sys, dask.array as da, hello_daskhpc\n"
        "print(sys.prefix)\n"
        "print(int(da.ones((100, 100), chunks=10).sum().compute()))")]
    path = tmp_path / "check.ipynb"
    nbformat.write(notebook, path)
    runner = ("import sys, nbformat\nfrom nbclient import NotebookClient\n"
              "nb = nbformat.read(sys.argv[1], as_version=4)\n"
              "NotebookClient(nb, kernel_name='dask', timeout=120).execute()\n"
              "nbformat.write(nb, sys.argv[1])\n")
    # IPython's own profile would land in the home: keep it out, the home is compared later.
    env = {**user_environment(conda_install.home), "IPYTHONDIR": str(tmp_path / "ipython")}
    result = subprocess.run([sys.executable, "-c", runner, str(path)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert "".join(output.get("text", "") for output in outputs).split() == [
        str(conda_install.env), "10000"]


def test_what_the_tutorials_need_works_in_a_notebook(conda_install: CondaInstall,
                                                      tmp_path: Path) -> None:
    """The stack from the PyPI lock: no graphviz program, graphs render as a widget."""
    outputs = run_tutorial_needs("dask", user_environment(conda_install.home), tmp_path)
    check_tutorial_outputs(outputs, "application/vnd.jupyter.widget-view+json")


@pytest.mark.ssh_nodes
def test_workers_run_the_conda_python_on_every_node(conda_install: CondaInstall,
                                                     node_bed: NodeBed) -> None:
    home = conda_install.home
    env = {**user_environment(home, [home / "bin"]), "DASKHPC_SSH": node_bed.ssh_command}
    hostfile = home.parent / "hostfile"
    hostfile.write_text("node1\nnode2\nnode3\n")
    node1 = node_bed.nodes[0]
    start = node1.run([str(home / "bin/start-dask-cluster"), "--hostfile", str(hostfile),
                       "--workers-per-node", "1", "--threads-per-worker", "1"],
                      env=env, timeout=180)
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        check = node1.run([str(conda_install.env / "bin/python"), "-c", WORKER_PYTHONS,
                           str(home / "dask-scheduler.json")], env=env, timeout=120)
        assert check.returncode == 0, check.stderr
        found = json.loads(check.stdout.strip().splitlines()[-1])
        assert found == {"pythons": [str(conda_install.env / "bin/python")],
                         "hosts": ["node1", "node2", "node3"]}
    finally:
        stop = node1.run([str(home / "bin/stop-dask-cluster")], env=env, timeout=120)
        assert stop.returncode == 0, stop.stdout + stop.stderr
    (home / "dask-scheduler.json").unlink(missing_ok=True)


def test_noop_rerun_then_failures_leave_the_install(conda_install: CondaInstall,
                                                    tmp_path: Path) -> None:
    home, build = conda_install.home, conda_install.env.resolve()
    again = setup(home, conda_install.args)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr
    # A plain re-run (after a git pull) keeps the backend, channel and file it was given.
    plain = setup(home, [])
    assert plain.returncode == 0 and "nothing to do" in plain.stdout, plain.stderr

    unreachable = [a if not a.startswith("file://") else "http://127.0.0.1:9/conda-forge"
                   for a in conda_install.args]
    result = setup(home, unreachable)
    assert result.returncode != 0
    [line] = error_lines(result)
    assert "channel unreachable" in line and "http://127.0.0.1:9/conda-forge" in line
    assert "pass --channel URL" in line and "previous install is unchanged" in line

    missing = tmp_path / "missing.yml"
    missing.write_text(TEST_YML + "  - no-such-package\n")
    args = [*conda_install.args[:-1], str(missing)]
    result = setup(home, args)
    assert result.returncode != 0
    [line] = error_lines(result)
    assert "no-such-package" in line and "previous install is unchanged" in line

    # Ctrl-C while a rebuild (--update) is installing its conda packages.
    process = subprocess.Popen(["sh", str(REPO / "setup-dask.sh"), "--yes", "--update"],
                               env=setup_environment(home), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            fresh = [b for b in build.parent.iterdir() if b != build]
            if any((b / "conda-meta").is_dir() for b in fresh):
                break
            time.sleep(0.1)
        assert process.poll() is None, "setup finished before it could be interrupted"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        _, errors = process.communicate(timeout=300)
    assert errors.strip().splitlines() == [
        "setup-dask.sh: error: interrupted; the previous install is unchanged; "
        "run setup-dask.sh again to finish"]

    assert conda_install.env.resolve() == build
    works = subprocess.run([str(conda_install.env / "bin/python"), "-c", "import distributed"],
                           timeout=120, env=user_environment(home))
    assert works.returncode == 0
    assert sorted(p.name for p in build.parent.iterdir()) == [build.name]


def test_remove_leaves_the_home_as_before(conda_install: CondaInstall) -> None:
    result = run_remove(conda_install.home, ["--yes"],
                        environment=setup_environment(conda_install.home))
    assert result.returncode == 0, result.stderr
    assert tree_snapshot(conda_install.home) == conda_install.before


@pytest.fixture
def locked(channel: str, tmp_path: Path) -> Iterator[Path]:
    source = tmp_path / "test.yml"
    source.write_text(TEST_YML)
    lock = tmp_path / "conda-lock.yml"
    made = subprocess.run(["sh", str(REPO / "envs/conda-lock.sh"), "--source", str(source),
                           "--output", str(lock), "--channel", channel],
                          env={**os.environ, "PYTHON": sys.executable}, capture_output=True,
                          text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    yield lock


def test_install_exactly_a_conda_lock_file_for_all_users(locked: Path, site: Path,
                                                          tmp_path: Path) -> None:
    """An admin install (--system) from the lock: exactly its packages, readable and not
    writable by a plain user, and removed exactly."""
    document = locked.read_text()
    packages = yaml.safe_load(document)["package"]
    before = tree_snapshot(site)
    prefix = site / "opt/daskhpc/9.9"
    uv_dir = uv_bin_dir(tmp_path)
    admin = user_environment(site / "admin", [python_only_dir(tmp_path),
                                              *([uv_dir] if uv_dir else [])])
    system = ["--system", "--prefix", str(prefix), "--kernel-dir", str(site / "share/jupyter")]
    hello = next(package for package in packages if package["name"] == "hello-daskhpc")
    tampered = tmp_path / "bad-conda-lock.yml"
    tampered.write_text(document.replace(hello["hash"]["sha256"], "0" * 64))
    result = run_setup(site / "admin", ["--yes", "--backend", "rattler", *system,
                                        "--environment", str(tampered)], environment=admin)
    assert result.returncode != 0
    [line] = error_lines(result)
    assert "hash mismatch" in line and "hello-daskhpc" in line
    assert not (prefix / "env").exists()

    result = run_setup(site / "admin", ["--yes", "--backend", "rattler", *system,
                                        "--environment", str(locked)], environment=admin)
    assert result.returncode == 0, result.stdout + result.stderr
    build = (prefix / "env").resolve()
    installed = {}
    for path in (build / "conda-meta").glob("*.json"):
        record = json.loads(path.read_text())
        installed[record["url"]] = record["sha256"]
    assert installed == {package["url"]: package["hash"]["sha256"] for package in packages}

    check = as_nobody(site, f"{prefix}/env/bin/python -c 'import hello_daskhpc, distributed'")
    assert check.returncode == 0, check.stderr
    assert as_nobody(site, f"touch {prefix}/env/bin/intruder").returncode != 0
    removed = run_remove(site / "admin", ["--yes", "--system", "--prefix", str(prefix)],
                         environment=admin)
    assert removed.returncode == 0, removed.stderr
    after = {path: kind for path, kind in tree_snapshot(site).items()
             if not path.startswith("nobody-home")}  # the plain user's own home
    assert after == before
