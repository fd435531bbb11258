"""Benchmark: cold install (empty download caches) and no-op re-run of setup-dask.sh, for the
venv backend and the rattler backend (a conda environment from a local file:// channel).

    .venv/bin/python bench/install.py [--runs 3] [--backends venv,rattler]

Each run: a fresh HOME and fresh, empty caches in bench/.work, then `sh setup-dask.sh --yes
--backend B` (timed: cold), then the same command again (timed: no-op), then remove-dask.sh.
Backends alternate within each run (venv first in odd runs, rattler first in even ones), since
the machine is shared and its load drifts. The rattler backend installs from the channel of
tests/testbed/conda_channel.py (python repacked from this machine's CPython, pip) an
environment file with only python and pip, so the stack comes from the same hashed PyPI lock
as the venv's; its cold run includes installing py-rattler into the tools dir from PyPI.
Prints per-run times, the phases from the install log, the load average before each run (other
work on the machine slows the CPU-bound bytecode step), and the medians. uv comes from PATH as
on a machine that has it.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from testbed.install import setup_environment  # noqa: E402

WORK = REPO / "bench" / ".work" / "install"
PHASES = {"uv venv": "venv", "pip sync": "packages", "-m venv": "py-rattler",
          "pip install --quiet": "py-rattler", "rattler import main": "conda+packages",
          "--no-deps": "daskhpc", "compileall": "bytecode", "write_kernel_spec": "kernel"}
ENVIRONMENT = "name: bench\ndependencies:\n  - python 3.11.*\n  - pip\n"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system, all child processes) of one command. CPU
    time hardly depends on what else runs on the machine; wall time does."""
    cpu, started = children_cpu(), time.monotonic()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{argv} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, children_cpu() - cpu


def phases(home: Path) -> dict[str, float]:
    """Seconds per command, from the '$ command' / '# exit 0 after N s' pairs of the log."""
    found: dict[str, float] = {}
    for log in (home / ".local/state/daskhpc/logs").glob("setup-*.log"):
        command = ""
        for line in log.read_text().splitlines():
            if line.startswith("$ "):
                command = line
            match = re.match(r"# exit 0 after ([\d.]+) s", line)
            if match:
                name = next((v for k, v in PHASES.items() if k in command), "other")
                found[name] = found.get(name, 0.0) + float(match.group(1))
    return found


def one_run(number: int, backend: str, channel: str) -> tuple[float, float]:
    root = WORK / f"run{number}-{backend}"
    shutil.rmtree(root, ignore_errors=True)
    home = root / "home"
    home.mkdir(parents=True)
    env = setup_environment(home)
    env["UV_CACHE_DIR"] = str(root / "uv-cache")  # empty: every wheel is downloaded
    setup = ["sh", str(REPO / "setup-dask.sh"), "--yes", "--backend", backend]
    if backend == "rattler":
        environment = root / "bench.yml"
        environment.write_text(ENVIRONMENT)
        setup += ["--channel", channel, "--environment", str(environment)]
    load = os.getloadavg()[0]
    cold, cold_cpu = timed(setup, env)
    noop, _ = timed(setup, env)
    steps = phases(home)
    timed(["sh", str(REPO / "remove-dask.sh"), "--yes"], env)
    shutil.rmtree(root, ignore_errors=True)
    detail = ", ".join(f"{name} {seconds:.1f}" for name, seconds in steps.items())
    print(f"run {number} {backend}: cold {cold:.1f} s wall, {cold_cpu:.1f} s CPU ({detail}), "
          f"no-op {noop:.2f} s, load before {load:.1f}", flush=True)
    return cold, noop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="venv,rattler")
    arguments = parser.parse_args()
    backends = arguments.backends.split(",")
    channel = ""
    if "rattler" in backends:
        from testbed.conda_channel import build_channel

        shutil.rmtree(WORK / "channel", ignore_errors=True)
        channel = "file://" + str(build_channel(WORK / "channel"))
    results: dict[str, list[tuple[float, float]]] = {backend: [] for backend in backends}
    for number in range(1, arguments.runs + 1):
        order = backends if number % 2 else list(reversed(backends))
        for backend in order:
            results[backend].append(one_run(number, backend, channel))
    for backend, runs in results.items():
        colds, noops = zip(*runs)
        print(f"{backend}: median of {len(runs)}: cold install {statistics.median(colds):.1f} s "
              f"(spread {min(colds):.1f}-{max(colds):.1f}), no-op re-run "
              f"{statistics.median(noops):.2f} s (spread {min(noops):.2f}-{max(noops):.2f})")


if __name__ == "__main__":
    main()
