"""The command-line contract: bad input is one line, a non-zero exit, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_daskhpc(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "daskhpc", *args], capture_output=True,
                          text=True, env=env, timeout=60)


@pytest.mark.parametrize("command", ["setup", "remove", "start", "stop", "status", "doctor"])
def test_unknown_flag_is_one_line_naming_it(command: str) -> None:
    result = run_daskhpc(command, "--no-such-flag")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--no-such-flag" in lines[0] and "--help" in lines[0]


def test_missing_command_lists_the_commands() -> None:
    result = run_daskhpc()
    assert result.returncode == 2
    assert "setup, remove, start, stop, status" in result.stderr


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--workers-per-node", "0"), ("--workers-per-node", "-3"), ("--workers-per-node", "many"),
     ("--timeout", "0"), ("--timeout", "nan"), ("--timeout", "inf"), ("--min-workers", "-1")],
)
def test_nonsense_numbers_are_refused(flag: str, value: str) -> None:
    result = run_daskhpc("start", flag, value)
    assert result.returncode == 2
    assert flag in result.stderr and value in result.stderr


def test_help_names_the_program() -> None:
    result = run_daskhpc("start", "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: start-dask-cluster")


def test_code_is_ruff_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed in the test environment (tests/requirements.txt)")
    result = subprocess.run([str(ruff), "check", str(REPO)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
