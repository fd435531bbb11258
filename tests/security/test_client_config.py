"""The environment hook: notebooks reach the user's cluster and its dashboard with no new code."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import KernelClient, KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from security_helpers import RunningCluster

from daskhpc import client_config, paths
from daskhpc.cluster.tls import current as current_tls
from daskhpc.cluster.tls import material as security
from daskhpc.cluster.tls import user as user_tls
from daskhpc.cluster.tls.material import TLSFiles
from daskhpc.files import make_shared_read_only

SRC = Path(__file__).resolve().parents[2] / "src"
# Exactly the line the installer puts in the environment's .pth file.
PTH_LINE = "import daskhpc.client_config; daskhpc.client_config.apply()\n"


def run_python(code: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """A new interpreter that processes the .pth line before running `code`, as at startup."""
    site_dir = tmp_path / "site"
    site_dir.mkdir(exist_ok=True)
    (site_dir / "daskhpc-client.pth").write_text(PTH_LINE)
    env = {**env, "PYTHONPATH": os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])}
    prelude = f"import site; site.addsitedir({str(site_dir)!r})\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code], env=env, capture_output=True, text=True,
        timeout=120,
    )


LINK = "from distributed.utils import format_dashboard_link; print(format_dashboard_link({}, 8787))"


@pytest.mark.parametrize(
    ("extra_env", "expected"),
    [
        ({"JUPYTERHUB_SERVICE_PREFIX": "/user/alice/"}, "/user/alice/proxy/node2:8787/status"),
        ({}, "http://node2:8787/status"),
        (
            {"JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
             "DASK_DISTRIBUTED__DASHBOARD__LINK": "http://my-own/{port}"},
            "http://my-own/8787",
        ),
    ],
    ids=["behind-jupyterhub", "no-jupyterhub", "user-choice-wins"],
)
def test_dashboard_link(
    extra_env: dict[str, str], expected: str, clean_dask_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_python(LINK.format("'node2'"), {**clean_dask_env, **extra_env}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_tls_settings_name_the_users_client_certificates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASKHPC_STATE_DIR", str(tmp_path / "state"))
    environ: dict[str, str] = {"DASKHPC_STATE_DIR": str(tmp_path / "state")}
    client_config.apply(environ)
    assert client_config.TLS_CA not in environ  # no cluster yet: nothing set

    user_tls.cluster_tls(tmp_path / "cluster" / "tls", "cluster", None)  # the first start
    client_config.apply(environ)
    link = paths.current_tls_link()
    tls = TLSFiles(link.resolve())
    assert tls.directory.parent == paths.client_tls_dir()
    cert_path, key_path = tls.cert("client")
    assert environ[client_config.TLS_CA] == str(link / tls.ca_file.name)
    assert environ[client_config.TLS_CLIENT_CERT] == str(link / cert_path.name)
    assert environ[client_config.TLS_CLIENT_KEY] == str(link / key_path.name)
    assert Path(environ[client_config.TLS_CLIENT_KEY]).resolve() == key_path.resolve()
    assert "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION" not in environ


def test_user_tls_settings_and_dangling_pointer_are_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASKHPC_STATE_DIR", str(tmp_path / "state"))
    tls = security.create_standalone_tls(tmp_path / "tls")
    current_tls.point_at(tls.directory)
    users_choice = {"DASKHPC_STATE_DIR": str(tmp_path / "state"), client_config.TLS_CA: "/mine"}
    environ = dict(users_choice)
    client_config.apply(environ)
    assert environ == users_choice

    for path in tls.directory.iterdir():
        path.unlink()
    environ = {"DASKHPC_STATE_DIR": str(tmp_path / "state")}
    client_config.apply(environ)
    assert environ == {"DASKHPC_STATE_DIR": str(tmp_path / "state")}


def test_apply_never_raises() -> None:
    class Broken(dict):  # type: ignore[type-arg]
        def get(self, *args: object) -> str:
            raise OSError("unreadable environment")

    client_config.apply(Broken())


@pytest.mark.parametrize(
    "environ",
    [{}, {"XDG_STATE_HOME": "/xdg/state"}, {"DASKHPC_STATE_DIR": "~/custom"},
     {"XDG_STATE_HOME": "/xdg", "DASKHPC_STATE_DIR": "/explicit"}],
)
def test_pointer_location_agrees_with_paths(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("XDG_STATE_HOME", "DASKHPC_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert client_config.current_tls_directory(environ) == str(paths.current_tls_link())


# A kernel opened before the user's first cluster, whose start then points the current-tls
# link at the user's client certificates, while the kernel stays open.
NOTEBOOK_SESSION = """
from pathlib import Path
from distributed import Client, LocalCluster
from daskhpc.cluster.tls.current import point_at
point_at(Path({tls_dir!r}))  # start-dask-cluster
with Client(scheduler_file={scheduler_file!r}, timeout=30) as client:
    print("cluster", client.submit(sum, [1, 2]).result(timeout=60))
with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as local:
    with Client(local) as client:
        print("local", local.scheduler_address.split(":")[0], client.submit(sum, [3, 4]).result())
"""


def test_kernel_reaches_cluster_started_later_and_a_local_cluster_works_beside_it(
    tls_cluster: RunningCluster,
    clean_dask_env: dict[str, str],
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    env = {**clean_dask_env, "DASKHPC_STATE_DIR": str(state)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DASKHPC_STATE_DIR", str(state))
        current_tls.ensure_current()  # done by the installer

    code = NOTEBOOK_SESSION.format(
        tls_dir=str(tls_cluster.tls.directory), scheduler_file=str(tls_cluster.scheduler_file)
    )
    result = run_python(code, env, tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:2] == ["cluster 3", "local tcp 7"]


def test_hook_imports_nothing_beyond_itself() -> None:
    """It runs at every interpreter start (after site, which imports os): no pathlib, typing or
    dask, each of which costs milliseconds."""
    code = (
        "import sys; before = set(sys.modules); import daskhpc.client_config; "
        "print(sorted(set(sys.modules) - before))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True, text=True, check=True,
    )
    # (Nothing new at all where the environment's .pth line already imported it.)
    assert set(ast.literal_eval(result.stdout)) <= {"daskhpc", "daskhpc.client_config"}


def make_system_env(prefix: Path) -> Path:
    """An environment as a --system install leaves it, for this test: a real interpreter (a
    venv sharing the dev venv's packages) whose startup runs the installer's .pth hook, and the
    shared placeholder certificates inside it. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site_dir = Path(subprocess.run([str(prefix / "bin" / "python"), "-c", where],
                                   capture_output=True, text=True, check=True).stdout.strip())
    dev_site = sysconfig.get_path("purelib")
    (site_dir / "_dev_packages.pth").write_text(f"{dev_site}\n{SRC}\n")  # sorts before the hook
    (site_dir / "daskhpc_client_config.pth").write_text(PTH_LINE)
    shared = prefix.joinpath(*client_config.SHARED_PLACEHOLDER)
    security.create_standalone_tls(shared, ("client",))
    make_shared_read_only(shared)
    return prefix / "bin" / "python"


def run_cell(kernel: KernelClient, code: str) -> str:
    printed: list[str] = []

    def keep(message: dict[str, Any]) -> None:
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])

    reply = kernel.execute_interactive(code, timeout=120, output_hook=keep)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(printed)


def test_system_install_kernel_opened_before_the_first_cluster_follows_it(
    tls_cluster: RunningCluster,
    clean_dask_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    python = make_system_env(tmp_path / "env")
    state = tmp_path / "state"
    env = {**clean_dask_env, "DASKHPC_STATE_DIR": str(state)}
    env.pop("PYTHONPATH", None)

    # Any other Python of the environment (the admin's, the installer's) leaves no trace.
    subprocess.run([str(python), "-c", "pass"], env=env, check=True)
    assert not state.exists()

    kernels = tmp_path / "kernels"
    (kernels / "dask").mkdir(parents=True)
    (kernels / "dask" / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Dask", "language": "python"}))
    manager = KernelManager(kernel_name="dask",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    manager.start_kernel(env=env)
    try:
        kernel = manager.client()
        kernel.start_channels()
        kernel.wait_for_ready(timeout=120)
        ca_setting = run_cell(kernel, "import os\n"
                                      "print(os.environ['DASK_DISTRIBUTED__COMM__TLS__CA_FILE'])")
        assert ca_setting.strip() == str(state / "current-tls" / "ca.pem")
        shared = tmp_path / "env" / "share" / "daskhpc" / "no-cluster-tls"
        assert (state / "current-tls").resolve() == shared.resolve()

        monkeypatch.setenv("DASKHPC_STATE_DIR", str(state))
        current_tls.point_at(tls_cluster.tls.directory)  # what the first start does

        answer = run_cell(kernel, (
            "from distributed import Client\n"
            f"with Client(scheduler_file={str(tls_cluster.scheduler_file)!r}, timeout=30) as c:\n"
            "    print(c.submit(sum, [1, 2]).result(timeout=60))\n"))
        assert answer.strip() == "3"
        kernel.stop_channels()
    finally:
        manager.shutdown_kernel(now=True)
