"""The plan is a pure function of options and state: what a re-run, an update or a code change
does, before anything runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from install_helpers import setup_args

from daskhpc.install import generated, plan
from daskhpc.install.apply import Installer
from daskhpc.install.backends.base import Tools
from daskhpc.install.options import resolve
from daskhpc.manifest import EnvRecord, Manifest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = (REPO / "bin" / "wrapper.sh.in").read_text()
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "UV_CACHE_DIR",
                     "JUPYTER_DATA_DIR", "DASKHPC_DATA_DIR", "DASKHPC_STATE_DIR",
                     "DASKHPC_ENV_PREFIX", "DASKHPC_BIN_DIR", "DASKHPC_CACHE_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def state(env=None, complete=False, uv="/usr/bin/uv") -> plan.State:
    return plan.State(env=env, env_complete=complete, tools=Tools(uv=uv), venv_available=True)


def kinds(steps: list[plan.Step]) -> list[str]:
    return [step.kind for step in steps]


def test_first_install_builds_env_then_kernel_then_wrappers(home: Path) -> None:
    options = resolve(setup_args("--backend", "venv"))
    steps = plan.make_plan(options, state(), TEMPLATE)
    assert kinds(steps) == ["env", "file", "file", "file", "client-tls", "kernel",
                            "file", "file", "file", "file"]
    assert options.env_link == home / ".local/share/daskhpc/env"
    wrappers = [Path(step.path).name for step in steps[-4:]]
    assert wrappers == ["start-dask-cluster", "stop-dask-cluster", "dask-cluster-status",
                        "dask-cluster-doctor"]
    assert all(step.mode == 0o755 for step in steps[-4:])
    assert f"'{options.env_link}/bin/python' -P -m daskhpc start" in steps[-4].content
    assert f"'{options.env_link}/bin/python' -P -m daskhpc doctor" in steps[-1].content


def test_uv_is_fetched_first_when_missing(home: Path) -> None:
    steps = plan.make_plan(resolve(setup_args("--backend", "venv")), state(uv=None), TEMPLATE)
    assert kinds(steps)[:2] == ["uv", "env"]


def test_current_env_is_not_rebuilt_and_update_rebuilds(home: Path) -> None:
    options = resolve(setup_args("--backend", "venv"))
    record = EnvRecord(str(options.env_link), "/x/build", "venv", plan.inputs_digest(options),
                       plan.package_digest(options.repo))
    assert "env" not in kinds(plan.make_plan(options, state(record, True), TEMPLATE))
    assert "env" in kinds(plan.make_plan(options, state(record, False), TEMPLATE))
    updating = resolve(setup_args("--backend", "venv", "--update"))
    assert "env" in kinds(plan.make_plan(updating, state(record, True), TEMPLATE))


def test_changed_lock_rebuilds_and_changed_code_only_reinstalls_the_package(home: Path) -> None:
    options = resolve(setup_args("--backend", "venv"))
    stale_lock = EnvRecord(str(options.env_link), "/b", "venv", "old", "old")
    assert kinds(plan.make_plan(options, state(stale_lock, True), TEMPLATE))[0] == "env"
    stale_code = EnvRecord(str(options.env_link), "/b", "venv", plan.inputs_digest(options),
                           "old")
    assert kinds(plan.make_plan(options, state(stale_code, True), TEMPLATE))[0] == "package"


def test_kernel_points_at_the_env_link_not_a_build(home: Path) -> None:
    options = resolve(setup_args("--backend", "venv", "--display-name", "Dask 2"))
    kernel = next(s for s in plan.make_plan(options, state(), TEMPLATE) if s.kind == "kernel")
    spec = json.loads(kernel.content)
    assert spec["argv"][0] == str(options.env_link / "bin" / "python")
    assert spec["display_name"] == "Dask 2"
    assert spec["env"]["PATH"] == f"{options.env_link}/bin:${{PATH}}"
    assert kernel.path == str(home / ".local/share/jupyter/kernels/dask")


def test_the_environment_gets_both_hooks_and_users_placeholder_certificates(home: Path) -> None:
    options = resolve(setup_args("--backend", "venv"))
    steps = plan.make_plan(options, state(), TEMPLATE)
    client_tls = next(s for s in steps if s.kind == "client-tls")
    assert client_tls.path == str(home / ".local/state/daskhpc/current-tls")
    pth = next(s for s in steps if s.path.endswith(".pth"))
    assert pth.content == "import daskhpc.client_config; daskhpc.client_config.apply()\n"
    server = next(s for s in steps if s.path.endswith("jupyter_server_config.py"))
    assert "c.ServerProxy.host_allowlist = allowed" in server.content


def test_add_to_path_is_one_marked_line(home: Path) -> None:
    options = resolve(setup_args("--backend", "venv", "--add-to-path"))
    step = plan.make_plan(options, state(), TEMPLATE)[-1]
    assert step.kind == "rc-line" and step.path == str(home / ".bashrc")
    assert step.content == f'export PATH="{home}/bin:$PATH"  {generated.RC_MARKER}'


def test_system_install_lives_under_its_prefix(tmp_path: Path, home: Path) -> None:
    if not Path(SYSTEM_PYTHON).exists():
        pytest.skip(f"--system needs a Python every user can run; {SYSTEM_PYTHON} is missing")
    prefix = tmp_path / "opt/daskhpc/2.0"
    options = resolve(setup_args("--backend", "venv", "--system", "--prefix", str(prefix),
                                 "--python", SYSTEM_PYTHON,
                                 "--kernel-dir", str(tmp_path / "jupyter"),
                                 "--modulefiles-dir", str(tmp_path / "modulefiles")))
    assert options.env_link == prefix / "env"
    assert options.bin_dir == prefix / "bin"
    assert options.manifest_path == prefix / "daskhpc-manifest.json"
    assert options.kernel_dir == tmp_path / "jupyter/kernels/dask-2.0"
    assert options.display_name == "Python (Dask 2.0)"
    steps = plan.make_plan(options, state(), TEMPLATE)
    modulefiles = [Path(s.path) for s in steps][-2:]
    assert modulefiles == [tmp_path / "modulefiles/daskhpc/2.0.lua",
                           tmp_path / "modulefiles/daskhpc/2.0"]


def test_modulefiles_set_path_and_jupyter_path() -> None:
    bin_dir, data = Path("/opt/daskhpc/2.0/bin"), Path("/opt/jupyter")
    lua = generated.lmod_modulefile(bin_dir, data, Path("/opt/daskhpc/2.0"), "2.0")
    assert 'prepend_path("PATH", "/opt/daskhpc/2.0/bin")' in lua
    assert 'prepend_path("JUPYTER_PATH", "/opt/jupyter")' in lua
    assert 'whatis("Version: 2.0")' in lua
    tcl = generated.tcl_modulefile(bin_dir, data, Path("/opt/daskhpc/2.0"), "2.0")
    assert tcl.startswith("#%Module1.0\n")
    assert "prepend-path PATH {/opt/daskhpc/2.0/bin}" in tcl
    assert "prepend-path JUPYTER_PATH {/opt/jupyter}" in tcl
    assert "conflict daskhpc" in tcl


def test_a_rebuild_rewrites_the_config_inside_the_env(home: Path) -> None:
    """Config files of the old build match, but the new build has none yet."""
    options = resolve(setup_args("--backend", "venv"))
    config = options.env_link / "etc" / "dask" / "daskhpc.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(generated.dask_config_text())
    config.chmod(0o644)
    installer = Installer(options, Manifest(path=options.manifest_path), state())
    steps = plan.make_plan(options, state(), TEMPLATE)
    assert any(step.path == str(config) for step in installer.pending(steps))
    current = [step for step in steps if step.kind != "env"]
    assert not any(step.path == str(config) for step in installer.pending(current))


def test_an_environment_built_before_backends_became_types_is_not_rebuilt(home: Path) -> None:
    """Its manifest holds the digest of (backend, Python, PyPI lock) as 0.1.0 computed it."""
    options = resolve(setup_args("--backend", "venv"))
    parts = [b"venv", options.python.encode(), (REPO / "envs/requirements.lock").read_bytes()]
    recorded = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).hexdigest()
    assert plan.inputs_digest(options) == recorded
