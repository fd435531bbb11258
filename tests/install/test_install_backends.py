"""The exact commands each backend runs, and which backend auto-detection picks."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from testbed.install import run_remove, run_setup, setup_environment

from daskhpc.errors import DaskhpcError
from daskhpc.install.backends import conda, rattler, select, venv

ENVS = Path(__file__).resolve().parents[2] / "envs"


def test_micromamba_creates_from_environment_yml(tmp_path: Path) -> None:
    source = ENVS / "environment.yml"
    commands = conda.build_commands("micromamba", "/opt/mm/micromamba", tmp_path / "b", source,
                                    None)
    assert commands == [["/opt/mm/micromamba", "create", "--yes", "--prefix",
                         str(tmp_path / "b"), "--file", str(source)]]
    mirrored = conda.build_commands("micromamba", "/m", tmp_path / "b", source, None,
                                    ["file:///mirror/conda-forge"])
    assert mirrored[0][-5:] == ["--file", str(source), "-c", "file:///mirror/conda-forge",
                                "--override-channels"]


@pytest.mark.parametrize("backend", ["mamba", "conda"])
def test_conda_and_mamba_use_env_create(tmp_path: Path, backend: str) -> None:
    commands = conda.build_commands(backend, f"/c/{backend}", tmp_path / "b",
                                    ENVS / "environment.yml", None)
    assert commands == [[f"/c/{backend}", "env", "create", "--quiet", "--prefix",
                         str(tmp_path / "b"), "--file", str(ENVS / "environment.yml")]]


def test_conda_lock_file_wins_when_present(tmp_path: Path) -> None:
    (tmp_path / "environment.yml").write_text("name: x\n")
    (tmp_path / "conda-lock.yml").write_text("version: 1\n")
    lock = tmp_path / "conda-lock.yml"
    commands = conda.build_commands("mamba", "/c/mamba", tmp_path / "b", lock, "/c/conda-lock")
    assert commands == [["/c/conda-lock", "install", "--mamba", "/c/mamba", "--prefix",
                         str(tmp_path / "b"), str(tmp_path / "conda-lock.yml")]]
    with pytest.raises(DaskhpcError, match="conda-lock is not on PATH"):
        conda.build_commands("mamba", "/c/mamba", tmp_path / "b", lock, None)


def test_named_env_goes_to_the_tools_first_envs_dir() -> None:
    info = json.dumps({"envs_dirs": ["/home/u/.conda/envs", "/opt/conda/envs"]})
    assert conda.envs_dir_from_info("conda", info) == Path("/home/u/.conda/envs")
    micromamba = json.dumps({"envs directories": ["/home/u/micromamba/envs"]})
    assert conda.envs_dir_from_info("micromamba", micromamba) == Path("/home/u/micromamba/envs")


def test_conda_env_gets_daskhpc_without_deps(tmp_path: Path) -> None:
    command = conda.package_command(tmp_path / "b", Path("/repo"))
    assert command[:3] == [str(tmp_path / "b/bin/python"), "-m", "pip"]
    assert "--no-deps" in command and command[-1] == "/repo"


def test_venv_backend_syncs_the_hashed_lock(tmp_path: Path) -> None:
    lock = ENVS / "requirements.lock"
    build = tmp_path / "b"
    assert venv.build_commands_uv("uv", "/usr/bin/python3", build, lock) == [
        ["uv", "venv", "--quiet", "--python", "/usr/bin/python3", str(build)],
        ["uv", "pip", "sync", "--python", str(build / "bin/python"), "--require-hashes",
         str(lock)],
    ]
    compile_command = venv.compile_command(build)
    assert compile_command[1:3] == ["-m", "compileall"] and "/tests?/" in compile_command
    package = venv.package_command("uv", build, Path("/repo"))
    assert "--no-deps" in package and "-e" not in package and package[-1] == "/repo"


def make_tool(folder: Path, name: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("#!/bin/sh\nexit 0\n")
    (folder / name).chmod(0o755)


def test_auto_prefers_micromamba_then_mamba_then_conda(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("CONDA_EXE", "MAMBA_EXE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "tools"))
    for name in ("conda", "mamba", "micromamba"):
        make_tool(tmp_path / "tools", name)
        assert select("auto").name == name
        assert select("conda").name == name
    with pytest.raises(DaskhpcError, match="not on PATH"):
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        select("mamba")
    with pytest.raises(DaskhpcError, match="no such backend; choose one of auto, micromamba"):
        select("pixi")  # SetupOptions from Python, past argparse's choices


def test_without_conda_tools_conda_means_rattler_and_auto_asks_the_channels(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("CONDA_EXE", "MAMBA_EXE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert select("conda") == rattler.Rattler("rattler")
    channel = tmp_path / "channel"
    (channel / "noarch").mkdir(parents=True)
    (channel / "noarch" / "repodata.json").write_text("{}")
    answered = select("auto", [f"file://{channel}"])
    assert answered.name == "rattler" and f"file://{channel} answered" in answered.note
    # A refused port answers at once; an unroutable one would wait PROBE_SECONDS, no more.
    silent = select("auto", [f"file://{channel}", "http://127.0.0.1:9/conda-forge"])
    assert silent.name == "venv"
    assert silent.note.startswith("auto: no conda, mamba or micromamba found and "
                                  "http://127.0.0.1:9/conda-forge did not answer within 5 s")
    assert silent.note.endswith("pass --backend conda --channel URL of a reachable mirror)")
    assert "\n" not in silent.note
    # A re-run keeps what the install recorded, without asking the network.
    assert select("auto", ["http://127.0.0.1:9/x"], recorded="rattler").name == "rattler"


def test_rattler_creates_from_the_source_with_the_pypi_lock(tmp_path: Path) -> None:
    argv = rattler.create_command("/tools/python", Path("/repo"), tmp_path / "b",
                                  Path("/site/env.yml"), ["file:///m/a", "https://m/b"],
                                  tmp_path / "cache")
    assert argv[:2] == ["/tools/python", "-c"] and argv[3:5] == ["/repo/src", "create"]
    assert argv[argv.index("--source") + 1] == "/site/env.yml"
    assert argv[argv.index("--pypi-lock") + 1] == "/repo/envs/requirements.lock"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--channel"] == [
        "file:///m/a", "https://m/b"]
    tools = rattler.install_tools_commands("/usr/bin/python3", tmp_path / "tools")
    assert tools[0] == ["/usr/bin/python3", "-m", "venv", str(tmp_path / "tools/rattler")]
    assert any(requirement.startswith("py-rattler==") for requirement in tools[1])


CONDA_TOOLS = [tool for tool in ("micromamba", "mamba", "conda") if shutil.which(tool)]


@pytest.mark.conda
@pytest.mark.skipif(not CONDA_TOOLS, reason="no conda, mamba or micromamba on PATH "
                    "(none can be installed on these machines: no conda channel is reachable)")
def test_conda_family_tool_answers_info() -> None:
    tool = CONDA_TOOLS[0]
    info = subprocess.run([tool, *conda.info_command(tool)[1:]], capture_output=True,
                          text=True, timeout=120)
    assert info.returncode == 0
    assert conda.envs_dir_from_info(tool, info.stdout).is_absolute()


@pytest.mark.conda
@pytest.mark.install
@pytest.mark.skipif(not CONDA_TOOLS, reason="no conda, mamba or micromamba on PATH "
                    "(none can be installed on these machines: no conda channel is reachable)")
def test_conda_family_install_and_remove(tmp_path: Path) -> None:
    tool = shutil.which(CONDA_TOOLS[0])
    assert tool is not None
    home = tmp_path / "home"
    home.mkdir()
    environment = setup_environment(home)
    environment["PATH"] = f"{Path(tool).parent}:{environment['PATH']}"
    result = run_setup(home, ["--yes", "--backend", CONDA_TOOLS[0]], environment=environment)
    assert result.returncode == 0, result.stdout + result.stderr
    python = home / ".local/share/daskhpc/env/bin/python"
    check = subprocess.run([str(python), "-c", "import distributed, daskhpc"], timeout=120)
    assert check.returncode == 0
    assert run_remove(home, ["--yes"], environment=environment).returncode == 0
    assert sorted(p.name for p in home.iterdir()) == []
