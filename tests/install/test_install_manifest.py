"""The manifest records what exists; remove takes exactly that away, newest first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daskhpc import manifest
from daskhpc.errors import DaskhpcError
from daskhpc.install import remove_command
from daskhpc.manifest import EnvRecord, Manifest
from daskhpc.options import RemoveOptions


def test_every_record_is_on_disk_at_once(tmp_path: Path) -> None:
    record = Manifest(path=tmp_path / "m.json")
    record.record("dir", tmp_path / "a")
    on_disk = json.loads((tmp_path / "m.json").read_text())
    assert on_disk["format"] == manifest.FORMAT_VERSION
    assert on_disk["items"] == [{"kind": "dir", "path": str(tmp_path / "a"), "line": ""}]
    record.set_env(EnvRecord("/l", "/b", "venv", "i", "p"))
    loaded = manifest.load(tmp_path / "m.json")
    assert loaded is not None and loaded.env == record.env and loaded.items == record.items
    assert not list(tmp_path.glob(".manifest.*")), "no temporary files left behind"


def test_unknown_format_is_refused_with_advice(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text(json.dumps({"format": 99, "items": []}))
    with pytest.raises(DaskhpcError, match="format 1"):
        manifest.load(tmp_path / "m.json")


def test_missing_manifest_is_none(tmp_path: Path) -> None:
    assert manifest.load(tmp_path / "none.json") is None


def remove_args(**overrides: Any) -> RemoveOptions:
    return RemoveOptions(**{"yes": True, **overrides})


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A hand-made install: dirs, a file, an env behind a link, an rc line, plus decoys."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("DASKHPC_DATA_DIR", raising=False)
    data = tmp_path / ".local/share/daskhpc"
    record = Manifest(path=data / "manifest.json")
    for folder in (tmp_path / ".local", tmp_path / ".local/share", data, tmp_path / "bin"):
        record.record("dir", folder)
        folder.mkdir(exist_ok=True)
    build = data / "env.builds" / "b1"
    record.record("dir", data / "env.builds")
    record.record("env-build", build)
    (build / "bin").mkdir(parents=True)
    record.record("env-link", data / "env")
    (data / "env").symlink_to(build)
    record.record("file", tmp_path / "bin/start-dask-cluster")
    (tmp_path / "bin/start-dask-cluster").write_text("#!/bin/sh\n")
    (tmp_path / "bin/mine").write_text("decoy\n")
    (tmp_path / ".bashrc").write_text("alias ll='ls -l'\nOURS\nexport EDITOR=vi\n")
    record.record("rc-line", tmp_path / ".bashrc", "OURS")
    return tmp_path


def test_remove_takes_exactly_the_recorded_items(installed: Path) -> None:
    assert remove_command.run(remove_args()) == 0
    assert (installed / ".bashrc").read_text() == "alias ll='ls -l'\nexport EDITOR=vi\n"
    assert (installed / "bin/mine").read_text() == "decoy\n", "others' files stay"
    assert not (installed / "bin/start-dask-cluster").exists()
    assert not (installed / ".local").exists()
    assert remove_command.run(remove_args()) == 0, "idempotent"


def test_dry_run_changes_nothing(installed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert remove_command.run(remove_args(dry_run=True)) == 0
    assert "bin/start-dask-cluster" in capsys.readouterr().out
    assert (installed / "bin/start-dask-cluster").exists()
    assert (installed / ".local/share/daskhpc/manifest.json").exists()


def test_keep_env_keeps_it_listed_for_a_later_remove(installed: Path) -> None:
    data = installed / ".local/share/daskhpc"
    assert remove_command.run(remove_args(keep_env=True)) == 0
    assert (data / "env/bin").is_dir()
    assert not (installed / "bin/start-dask-cluster").exists()
    assert "OURS" not in (installed / ".bashrc").read_text()
    assert remove_command.run(remove_args()) == 0
    assert not (installed / ".local").exists()


# A manifest exactly as daskhpc 0.1.0 wrote it before install steps became types (format 1,
# every item kind): an existing user's uninstall must keep working after an upgrade.
OLD_MANIFEST = """{
  "format": 1,
  "daskhpc_version": "0.1.0",
  "system": false,
  "settings": {"backend": "venv", "env_link": "HOME/.local/share/daskhpc/env"},
  "env": {"link": "HOME/.local/share/daskhpc/env",
          "build": "HOME/.local/share/daskhpc/env.builds/20261202-171652-29ef3db3",
          "backend": "venv", "inputs_sha256": "29ef", "package_sha256": "2f46"},
  "items": [
    {"kind": "dir", "path": "HOME/.local", "line": ""},
    {"kind": "dir", "path": "HOME/.local/share", "line": ""},
    {"kind": "dir", "path": "HOME/.local/share/daskhpc", "line": ""},
    {"kind": "dir", "path": "HOME/.local/share/daskhpc/env.builds", "line": ""},
    {"kind": "env-build", "path": "HOME/.local/share/daskhpc/env.builds/20261202-171652-29ef3db3",
     "line": ""},
    {"kind": "env-link", "path": "HOME/.local/share/daskhpc/env", "line": ""},
    {"kind": "dir", "path": "HOME/.local/share/daskhpc/tools", "line": ""},
    {"kind": "tree", "path": "HOME/.local/share/daskhpc/tools/uv", "line": ""},
    {"kind": "dir", "path": "HOME/.local/share/jupyter", "line": ""},
    {"kind": "dir", "path": "HOME/.local/share/jupyter/kernels", "line": ""},
    {"kind": "tree", "path": "HOME/.local/share/jupyter/kernels/dask", "line": ""},
    {"kind": "dir", "path": "HOME/bin", "line": ""},
    {"kind": "file", "path": "HOME/bin/start-dask-cluster", "line": ""},
    {"kind": "rc-line", "path": "HOME/.bashrc", "line": "export PATH=\\"HOME/bin:$PATH\\""},
    {"kind": "file-if-empty", "path": "HOME/.bashrc", "line": ""}
  ]
}
"""


def test_a_manifest_of_the_previous_version_is_removed_exactly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("DASKHPC_DATA_DIR", raising=False)
    data = tmp_path / ".local/share/daskhpc"
    build = data / "env.builds/20261202-171652-29ef3db3"
    (build / "bin").mkdir(parents=True)
    (data / "env").symlink_to(build)
    (data / "tools/uv/bin").mkdir(parents=True)
    kernel = tmp_path / ".local/share/jupyter/kernels/dask"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text("{}")
    (tmp_path / ".local/share/jupyter/kernels/theirs").mkdir()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/start-dask-cluster").write_text("#!/bin/sh\n")
    (tmp_path / ".bashrc").write_text(f'export PATH="{tmp_path}/bin:$PATH"\n')
    (data / "manifest.json").write_text(OLD_MANIFEST.replace("HOME", str(tmp_path)))
    assert remove_command.run(remove_args()) == 0
    assert not (tmp_path / ".bashrc").exists(), "setup made it for its line alone"
    assert not (tmp_path / "bin").exists()
    assert not data.exists()
    assert [p.name for p in (tmp_path / ".local/share/jupyter/kernels").iterdir()] == ["theirs"]
    assert remove_command.run(remove_args()) == 0, "idempotent"
