"""Options: start's defaults come from Dask's config (`daskhpc.start.*`), the command line wins,
and a bad setting is one clear line. Each case runs in a fresh interpreter, as the command does:
Dask reads its config files and variables once, when it is first imported."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from daskhpc import config
from daskhpc.options import StartOptions

SRC = Path(__file__).resolve().parents[1] / "src"

PARSE = """
import dataclasses, json, sys
from daskhpc.cli import parse_options
from daskhpc.errors import DaskhpcError
try:
    options = parse_options("start", sys.argv[1:])
except DaskhpcError as error:
    print(json.dumps({"error": str(error)}))
else:
    print(json.dumps({**dataclasses.asdict(options), "dask_imported": "dask" in sys.modules}))
"""


def start_options(tmp_path: Path, *argv: str, site: str = "", **variables: str) -> dict:
    """The StartOptions a start command with argv gets, with `site` as a dask config file."""
    site_dir = tmp_path / "site-dask"
    site_dir.mkdir(exist_ok=True)
    if site:
        (site_dir / "site.yaml").write_text(site)
    env = {key: value for key, value in os.environ.items() if not key.startswith("DASK_")}
    env.update(PYTHONPATH=str(SRC), HOME=str(tmp_path), DASK_ROOT_CONFIG=str(site_dir),
               **variables)
    result = subprocess.run([sys.executable, "-c", PARSE, *argv], capture_output=True,
                            text=True, env=env, timeout=60, check=True)
    return dict(json.loads(result.stdout))


def test_shipped_defaults_without_importing_dask(tmp_path: Path) -> None:
    found = start_options(tmp_path)
    assert (found["launcher"], found["timeout"], found["nanny"], found["tls"]) == (
        "auto", 120.0, True, True)
    assert found["workers_per_node"] is None
    assert found["dask_imported"] is False, "no daskhpc setting anywhere: dask stays unloaded"


def test_site_config_sets_defaults_and_the_command_line_wins(tmp_path: Path) -> None:
    site = "daskhpc:\n  start:\n    workers-per-node: 3\n    timeout: 30\n    tls: false\n"
    found = start_options(tmp_path, site=site)
    assert (found["workers_per_node"], found["timeout"], found["tls"]) == (3, 30.0, False)
    assert found["launcher"] == "auto", "what the site leaves out keeps the shipped default"
    given = start_options(tmp_path, "--workers-per-node", "2", "--timeout", "9", site=site)
    assert (given["workers_per_node"], given["timeout"]) == (2, 9.0)


def test_environment_variable_sets_a_default(tmp_path: Path) -> None:
    found = start_options(tmp_path, DASK_DASKHPC__START__MIN_WORKERS="2")
    assert found["min_workers"] == 2


@pytest.mark.parametrize(
    ("site", "message"),
    [
        ("daskhpc:\n  start:\n    timeout: soon\n",
         "dask config daskhpc.start.timeout: 'soon' is not a number"),
        ("daskhpc:\n  start:\n    workers-per-node: 0\n",
         "dask config daskhpc.start.workers-per-node: 0 must be 1 or more"),
        ("daskhpc:\n  start:\n    worker-per-node: 2\n",
         "dask config daskhpc.start.worker-per-node is not a daskhpc setting"),
    ],
)
def test_bad_site_setting_is_one_line_naming_it(tmp_path: Path, site: str, message: str) -> None:
    assert start_options(tmp_path, site=site)["error"].startswith(message)


def test_bad_setting_stops_the_start_command_with_one_line(tmp_path: Path) -> None:
    site_dir = tmp_path / "site-dask"
    site_dir.mkdir()
    (site_dir / "site.yaml").write_text("daskhpc:\n  start:\n    jobs: -1\n")
    env = {**os.environ, "PYTHONPATH": str(SRC), "HOME": str(tmp_path),
           "DASK_ROOT_CONFIG": str(site_dir)}
    result = subprocess.run([sys.executable, "-m", "daskhpc", "start"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "start-dask-cluster: error: dask config daskhpc.start.jobs: -1 must be 0 or more"]
    assert not (tmp_path / ".local").exists(), "nothing was started or written"


def test_shipped_file_names_every_setting_once() -> None:
    shipped = yaml.safe_load(config.DEFAULTS_FILE.read_text())["daskhpc"]["start"]
    per_run = {"hostfile", "hosts"}  # which nodes: never a site default
    fields = {field.name for field in dataclasses.fields(StartOptions)} - per_run
    assert {key.replace("-", "_") for key in shipped} == fields


def test_options_are_frozen() -> None:
    options = StartOptions.from_config(workers_per_node=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.workers_per_node = 3  # type: ignore[misc]
