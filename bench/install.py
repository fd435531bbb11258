"""Benchmark: cold install (empty download cache) and no-op re-run of setup-dask.sh.

    .venv/bin/python bench/install.py [--runs 3]

Each run: a fresh HOME and a fresh, empty UV_CACHE_DIR in bench/.work, then
`sh setup-dask.sh --yes --backend venv` (timed: cold), then the same command again (timed:
no-op), then remove-dask.sh. Prints per-run times, the phases from the install log, the load
average before each run (other work on the machine slows the CPU-bound bytecode step), and the
median. uv comes from PATH as on a machine that has it.
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
PHASES = {"uv venv": "venv", "pip sync": "packages", "--no-deps": "daskhpc",
          "compileall": "bytecode", "write_kernel_spec": "kernel"}


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


def one_run(number: int) -> tuple[float, float]:
    root = WORK / f"run{number}"
    shutil.rmtree(root, ignore_errors=True)
    home = root / "home"
    home.mkdir(parents=True)
    env = setup_environment(home)
    env["UV_CACHE_DIR"] = str(root / "uv-cache")  # empty: every wheel is downloaded
    setup = ["sh", str(REPO / "setup-dask.sh"), "--yes", "--backend", "venv"]
    load = os.getloadavg()[0]
    cold, cold_cpu = timed(setup, env)
    noop, _ = timed(setup, env)
    steps = phases(home)
    timed(["sh", str(REPO / "remove-dask.sh"), "--yes"], env)
    shutil.rmtree(root, ignore_errors=True)
    detail = ", ".join(f"{name} {seconds:.1f}" for name, seconds in steps.items())
    print(f"run {number}: cold {cold:.1f} s wall, {cold_cpu:.1f} s CPU ({detail}), "
          f"no-op {noop:.2f} s, load before {load:.1f}", flush=True)
    return cold, noop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = [one_run(number) for number in range(1, parser.parse_args().runs + 1)]
    colds, noops = zip(*runs)
    print(f"median of {len(runs)}: cold install {statistics.median(colds):.1f} s "
          f"(target <= 30), no-op re-run {statistics.median(noops):.2f} s (target <= 3)")


if __name__ == "__main__":
    main()
