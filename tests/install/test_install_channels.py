"""Where conda channels come from: --channel, then the site's .condarc, then the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from daskhpc.install import channels

ENVIRONMENT = "name: x\nchannels:\n  - conda-forge\n  - nodefaults\ndependencies:\n  - python\n"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CONDARC", raising=False)
    monkeypatch.setattr(channels, "condarc_files", lambda: [
        path for path in (tmp_path / ".condarc",) if path.is_file()])
    return tmp_path


def test_the_environment_file_names_them_when_nothing_else_does(home: Path) -> None:
    source = home / "environment.yml"
    source.write_text(ENVIRONMENT)
    assert channels.resolve([], source) == (["https://conda.anaconda.org/conda-forge"],
                                            str(source))


def test_condarc_channels_alias_and_custom_channels_win_over_the_file(home: Path) -> None:
    source = home / "environment.yml"
    source.write_text(ENVIRONMENT)
    (home / ".condarc").write_text(
        "# the site's mirror\n"
        "channel_alias: https://mirror.example.org/conda/\n"
        "channels:\n  - conda-forge\n  - bioconda\n  - file:///srv/local-channel/\n"
        "custom_channels:\n  bioconda: https://bio.example.org\n")
    assert channels.resolve([], source) == ([
        "https://mirror.example.org/conda/conda-forge", "https://bio.example.org/bioconda",
        "file:///srv/local-channel"], ".condarc")
    flow = home / ".condarc"
    flow.write_text("channels: [conda-forge, 'defaults']\n"
                    "default_channels:\n  - https://repo.example.org/main\n")
    assert channels.resolve([], source)[0] == ["https://conda.anaconda.org/conda-forge",
                                               "https://repo.example.org/main"]


def test_channel_flags_win_over_everything(home: Path) -> None:
    (home / ".condarc").write_text("channels:\n  - conda-forge\n")
    assert channels.resolve(["/srv/mirror", "https://m.example.org/cf/"], None) == (
        ["file:///srv/mirror", "https://m.example.org/cf"], "--channel")


def test_probe_says_why_a_channel_does_not_answer(tmp_path: Path) -> None:
    assert channels.probe(f"file://{tmp_path}") == f"no file://{tmp_path}/noarch/repodata.json"
    (tmp_path / "noarch").mkdir()
    (tmp_path / "noarch" / "repodata.json").write_text("{}")
    assert channels.probe(f"file://{tmp_path}") is None
    assert "refused" in (channels.probe("http://127.0.0.1:9/x", timeout=2) or "")
