"""Start and stop at scale: every way to start a cluster, on 1 to 16+ simulated nodes, from node1
and from a login host outside the node list. Needs root (network namespaces, Slurm, cgroups).

    sudo .venv/bin/python bench/scale.py --plots          # measure, then table + plots
    sudo .venv/bin/python bench/scale.py --nodes 1,2 --rounds 1 --results /tmp/r.json
    .venv/bin/python bench/scale.py --replot               # table + plots from saved results

For each node count a fresh bed (bench/harness.py) is built; then, each round, every variant
(bench/variants.py) runs from every start place, the order rotating and reversing between rounds
so drift in the machine's load hits all alike. Results (every run) go to --results as JSON;
--plots also rewrites the table in bench/README.md and the PNGs beside it, and fits the model of
the head node's own cost (bench/head_model.py).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import harness
from harness import Bed, rotated
from variants import DEFAULT, VARIANTS, ssh_launcher

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "scale-results.json"
PLACES = ("node1", "login")


def measure(counts: list[int], rounds: int, cases: list[tuple[str, str]], workdir: Path,
            save: Callable[[list[dict[str, Any]]], None]) -> list[dict[str, Any]]:
    """Rounds outside, node counts inside (ascending, then descending): whenever the run is
    stopped, every count has as many rounds as the others, give or take one."""
    runs: list[dict[str, Any]] = []
    for round_number in range(rounds):
        for count in counts if round_number % 2 == 0 else counts[::-1]:
            bed = Bed(workdir / f"nodes-{count}-{round_number}", count).start()
            try:
                home = workdir / f"warm-{count}-{round_number}"
                home.mkdir()
                try:
                    ssh_launcher(bed, bed.place("node1"), home)  # page cache, ARP: not counted
                except Exception as error:
                    print(f"warm-up failed ({error}); measuring anyway", file=sys.stderr)
                    bed.kill_leftovers()
                for variant, place in rotated(cases, round_number):
                    runs.append(run_case(bed, variant, place, round_number,
                                         workdir / f"home-{len(runs)}"))
                    save(runs)
            finally:
                bed.stop()
    return runs


def run_case(bed: Bed, variant: str, place: str, round_number: int,
             home: Path) -> dict[str, Any]:
    home.mkdir()
    entry: dict[str, Any] = {"nodes": bed.count, "variant": variant, "place": place,
                             "round": round_number + 1, "load": round(os.getloadavg()[0], 2),
                             "time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    try:
        entry.update(VARIANTS[variant](bed, bed.place(place), home).as_dict())
        print(f"{bed.count:3d} nodes  {variant:12s} from {place:5s}: start {entry['start']:6.2f}"
              f" s, dashboard {entry['dashboard']:6.2f} s, stop {entry['stop']:5.2f} s, CPU "
              f"{entry['cpu']:6.2f} s (head {entry['head_cpu']:5.2f} s), load {entry['load']}",
              file=sys.stderr, flush=True)
    except Exception as error:  # a failed run is a result too; the next must start clean
        entry["error"] = f"{type(error).__name__}: {error}"[-1500:]
        print(f"{bed.count:3d} nodes  {variant:12s} from {place:5s}: FAILED {entry['error']}",
              file=sys.stderr, flush=True)
        traceback.print_exc()
        bed.kill_leftovers()
    return entry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="1,2,4,8,16",
                        help="comma-separated node counts (default 1,2,4,8,16)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(DEFAULT),
                        help=f"comma-separated, from: {', '.join(VARIANTS)}; VARIANT@PLACE "
                        "runs it from that place only")
    parser.add_argument("--places", default=",".join(PLACES), help="node1, login or both")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help=f"JSON file of every run (default {RESULTS.name} beside this)")
    parser.add_argument("--plots", action="store_true",
                        help="after measuring: the table in bench/README.md and the PNG plots")
    parser.add_argument("--report-dir", type=Path, default=BENCH,
                        help="where README.md's table and the PNGs go (default: beside this)")
    parser.add_argument("--replot", action="store_true",
                        help="no measuring: table and plots from the saved --results")
    args = parser.parse_args()
    try:
        counts = [int(value) for value in args.nodes.split(",")]
    except ValueError:
        parser.error(f"--nodes takes comma-separated numbers, not {args.nodes!r}")
    places = args.places.split(",")
    cases = [(variant, place) for name in args.variants.split(",")
             for variant, _, only in [name.partition("@")]
             for place in ([only] if only else places)]
    unknown = sorted({v for v, _ in cases if v not in VARIANTS}
                     | {p for _, p in cases if p not in PLACES})
    if unknown or min(counts) < 1 or args.rounds < 1:
        parser.error(f"unknown variant or place {unknown}, or a count below 1; variants: "
                     f"{', '.join(VARIANTS)}; places: {', '.join(PLACES)}")
    if not args.replot:
        reason = harness.missing_requirements()
        if reason:
            print(f"cannot run: {reason}", file=sys.stderr)
            return 2
        # SIGTERM unwinds like Ctrl-C: every bed built so far is taken down.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
        load_before = os.getloadavg()[0]

        def save(runs: list[dict[str, Any]]) -> None:  # after every run: a stopped run counts
            results = {"started": started, "rounds": args.rounds,
                       "load_before": round(load_before, 2),
                       "load_after": round(os.getloadavg()[0], 2), "runs": runs}
            args.results.write_text(json.dumps(results, indent=1) + "\n")

        with tempfile.TemporaryDirectory(prefix="daskhpc-scale-") as workdir:
            measure(counts, args.rounds, cases, Path(workdir), save)
        print(f"every run: {args.results}", file=sys.stderr)
    if args.plots or args.replot:
        from report import write_report

        write_report(json.loads(args.results.read_text()), args.report_dir)
    failed = [run for run in json.loads(args.results.read_text())["runs"] if "error" in run]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
