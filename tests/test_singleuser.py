"""daskhpc-singleuser's rules, with real child processes standing in for the Jupyter server
(the whole of it inside a JupyterHub job: tests/jupyterhub/test_hub_4_faults.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daskhpc import singleuser
from daskhpc.singleuser import Keeper


def server(runs: Path, then: str) -> list[str]:
    """A stand-in server: counts its runs in `runs`, then does `then`."""
    return ["sh", "-c", f"echo run >> {runs}; {then}"]


def test_a_killed_server_is_started_again_up_to_the_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(singleuser, "SETTLE", 0.0)
    runs = tmp_path / "runs"
    assert Keeper(server(runs, "kill -9 $$")).run() == 128 + signal.SIGKILL
    assert runs.read_text().count("run") == singleuser.RESTART_LIMIT + 1
    err = capsys.readouterr().err
    assert err.count("ended (killed by SIGKILL); starting it again on the same port") == (
        singleuser.RESTART_LIMIT)
    assert f"{singleuser.RESTART_LIMIT + 1} times within 600 s; not starting it again" in err


def test_a_server_that_shuts_itself_down_ends_it(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert Keeper(server(runs, "exit 0")).run() == 0
    assert runs.read_text().count("run") == 1


def test_sigterm_ends_it_without_a_restart(tmp_path: Path) -> None:
    """scancel (the hub's stop) signals every process of the step: nothing starts again."""
    runs = tmp_path / "runs"
    keeper = subprocess.Popen(
        [sys.executable, "-c", "import sys; from daskhpc.singleuser import Keeper; "
         f"sys.exit(Keeper({server(runs, 'exec sleep 60')!r}).run())"])
    deadline = time.monotonic() + 30
    while not runs.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    keeper.send_signal(signal.SIGTERM)  # passed on to the server
    assert keeper.wait(timeout=10) == 128 + signal.SIGTERM
    assert runs.read_text().count("run") == 1


def test_an_environment_without_jupyterhub_is_one_line(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    assert singleuser.main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no JupyterHub" in err[0]
