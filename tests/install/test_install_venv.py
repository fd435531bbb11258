"""A real venv-backend install (the session's `dask_install`): what a user checks afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from install_helpers import tree_snapshot
from testbed.install import DaskInstall, run_setup, setup_environment
from tutorial_needs import check_tutorial_outputs, run_tutorial_needs

pytestmark = pytest.mark.install

NOTEBOOK_RUNNER = """
import sys
import nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(notebook, kernel_name=sys.argv[2], timeout=120).execute()
nbformat.write(notebook, sys.argv[1])
"""


def test_kernelspec_list_shows_the_kernel_on_the_env(dask_install: DaskInstall) -> None:
    jupyter = dask_install.prefix / "bin" / "jupyter"
    listing = subprocess.run([str(jupyter), "kernelspec", "list", "--json"],
                             env=dask_install.env(), capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    kernel = json.loads(listing.stdout)["kernelspecs"][dask_install.kernel_name]
    assert Path(kernel["resource_dir"]) == dask_install.kernel_dir
    assert kernel["spec"]["display_name"] == "Python (Dask)"
    assert kernel["spec"]["argv"][0] == str(dask_install.python)
    assert kernel["spec"]["env"]["PATH"].startswith(f"{dask_install.prefix}/bin:")


def test_a_notebook_runs_on_the_kernel(dask_install: DaskInstall, tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(
        "import os, sys, dask.array as da, distributed, lightgbm, dask_ml, daskhpc\n"
        "print(sys.executable)\n"
        "print(os.environ['PATH'].split(':')[0])\n"
        "print(int(da.ones((100, 100), chunks=10).sum().compute()))"
    )]
    path = tmp_path / "check.ipynb"
    nbformat.write(notebook, path)
    # The test runner's nbclient/jupyter_client, as any Jupyter server would start the kernel.
    result = subprocess.run([sys.executable, "-c", NOTEBOOK_RUNNER, str(path),
                             dask_install.kernel_name], env=dask_install.env(),
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    printed = "".join(output.get("text", "") for output in outputs).split()
    assert printed == [str(dask_install.python), f"{dask_install.prefix}/bin", "10000"]


def test_what_the_tutorials_need_works_in_a_notebook(dask_install: DaskInstall,
                                                      tmp_path: Path) -> None:
    """A venv has no graphviz program: graphs render through ipycytoscape, as a widget."""
    outputs = run_tutorial_needs(dask_install.kernel_name, dask_install.env(), tmp_path)
    check_tutorial_outputs(outputs, "application/vnd.jupyter.widget-view+json")


@pytest.mark.parametrize("program", ["start-dask-cluster", "stop-dask-cluster",
                                     "dask-cluster-status", "dask-cluster-doctor"])
def test_wrappers_run_from_a_clean_login_shell(dask_install: DaskInstall, program: str) -> None:
    wrapper = dask_install.wrapper(program)
    assert os.access(wrapper, os.X_OK)
    result = subprocess.run(
        ["env", "-i", f"HOME={dask_install.home}", "PATH=/usr/bin:/bin", "bash", "-l", "-c",
         f"{wrapper} --help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {program}")


def test_quick_start_works_as_typed_in_the_same_shell(dask_install: DaskInstall) -> None:
    """A fresh account: ~/bin did not exist at login, so this shell's PATH lacks it. Setup's
    last lines say what to type; typed as shown, the next Quick start line works."""
    lines = dask_install.setup_output.splitlines()
    exports = [line.strip() for line in lines if line.strip().startswith("export PATH=")]
    assert exports == [f'export PATH="{dask_install.bin_dir}:$PATH"'], dask_install.setup_output
    assert "open a new terminal" in dask_install.setup_output
    shell = subprocess.run(
        ["env", "-i", f"HOME={dask_install.home}", "PATH=/usr/bin:/bin", "sh", "-c",
         f"{exports[0]}; dask-cluster-status --version"],
        capture_output=True, text=True, timeout=120)
    assert "not found" not in shell.stderr, shell.stderr
    # The command ran (its answer does not depend on clusters other tests run in this home).
    assert shell.returncode == 0 and shell.stdout.startswith("daskhpc "), shell.stdout


def test_config_and_hooks_are_inside_the_env(dask_install: DaskInstall) -> None:
    config = dask_install.prefix / "etc" / "dask" / "daskhpc.yaml"
    assert "labextension:" in config.read_text()
    check = subprocess.run(
        [str(dask_install.python), "-c",
         "import dask, sys; print(dask.config.get('labextension.factory.class'))"],
        env=dask_install.env(), capture_output=True, text=True, timeout=120)
    assert check.stdout.strip() == "LabCluster", check.stderr
    source = Path(__file__).resolve().parents[2] / "src" / "daskhpc"
    if (source / "client_config.py").exists():
        pth = list((dask_install.prefix / "lib").glob("python3*/site-packages/daskhpc_*.pth"))
        assert len(pth) == 1
    if (source / "proxy_allowlist.py").exists():
        server = dask_install.prefix / "etc" / "jupyter" / "jupyter_server_config.py"
        assert "host_allowlist" in server.read_text()


def test_daskhpc_in_the_env_is_not_the_checkout(dask_install: DaskInstall) -> None:
    where = subprocess.run([str(dask_install.python), "-c",
                            "import daskhpc; print(daskhpc.__file__)"],
                           env=dask_install.env(), capture_output=True, text=True, timeout=60,
                           cwd="/")
    assert where.stdout.startswith(f"{dask_install.prefix}/lib/"), where.stdout


def test_rerun_changes_nothing(dask_install: DaskInstall) -> None:
    before = tree_snapshot(dask_install.home, contents=False)
    result = run_setup(dask_install.home, ["--yes", "--backend", "venv"])
    assert result.returncode == 0, result.stderr
    assert "up to date: nothing to do" in result.stdout
    assert tree_snapshot(dask_install.home, contents=False) == before


def test_failed_update_keeps_the_working_install(dask_install: DaskInstall) -> None:
    before = dask_install.prefix.resolve()
    environment = setup_environment(dask_install.home)
    environment["UV_DEFAULT_INDEX"] = "http://127.0.0.1:9/simple"  # nothing listens there
    result = run_setup(dask_install.home, ["--yes", "--backend", "venv", "--update"],
                       environment=environment)
    assert result.returncode != 0
    [error] = result.stderr.strip().splitlines()
    assert "building the environment failed" in error and "previous install is unchanged" in error
    assert dask_install.prefix.resolve() == before
    assert list(before.parent.iterdir()) == [before], "the half-built env is gone"
    status = subprocess.run([str(dask_install.wrapper("dask-cluster-status")), "--version"],
                            env=dask_install.env(), capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
