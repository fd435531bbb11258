"""From bench/scale.py's runs: the table, the targets and the head-node model in bench/README.md
(between the scale markers), and the PNG plots beside it."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness import spread

BEGIN = "<!-- scale.py: generated from here -->"
END = "<!-- scale.py: generated up to here -->"
OURS = ("ssh", "srun", "mpi")
LABELS = {"ssh": "start-dask-cluster (ssh)", "srun": "start-dask-cluster (srun)",
          "mpi": "start-dask-cluster (mpi)", "sshcluster": "SSHCluster",
          "dask-mpi": "dask-mpi", "slurmrunner": "SLURMRunner",
          "ssh-sntrup": "start-dask-cluster (ssh), sntrup761 key exchange"}
EXTRAPOLATE = (64, 256, 1024)
Runs = list[dict[str, Any]]


def grouped(runs: Runs) -> dict[tuple[str, str, int], Runs]:
    groups: dict[tuple[str, str, int], Runs] = defaultdict(list)
    for run in runs:
        if "error" not in run:
            groups[(run["variant"], run["place"], run["nodes"])].append(run)
    return groups


def cell(values: list[float]) -> str:
    if not values:
        return "failed"
    s = spread(values)
    if len(values) == 1:
        return f"{s['median']:.2f}"
    return f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})"


def table(runs: Runs) -> list[str]:
    groups = grouped(runs)
    tried = {(run["variant"], run["place"], run["nodes"]) for run in runs}
    counts = sorted({run["nodes"] for run in runs})
    variants = [v for v in LABELS if any(run["variant"] == v for run in runs)]
    lines = ["| nodes | variant | start from node1 | start from login | dashboard node1 / login "
             "| stop node1 / login | CPU s node1 / login | head CPU s (login) |",
             "| ---: | --- | --- | --- | --- | --- | --- | --- |"]
    for count in counts:
        for variant in variants:
            n1 = groups.get((variant, "node1", count), [])
            lg = groups.get((variant, "login", count), [])

            def med(rows: Runs, key: str) -> str:
                return f"{statistics.median(r[key] for r in rows):.2f}" if rows else "-"

            starts = [cell([r["start"] for r in rows]) if (variant, place, count) in tried
                      else "-" for rows, place in ((n1, "node1"), (lg, "login"))]
            lines.append(
                f"| {count} | {LABELS[variant]} | {starts[0]} | "
                f"{starts[1]} | {med(n1, 'dashboard')} / "
                f"{med(lg, 'dashboard')} | {med(n1, 'stop')} / {med(lg, 'stop')} | "
                f"{med(n1, 'cpu')} / {med(lg, 'cpu')} | {med(lg, 'head_cpu')} |")
    return lines


def paired_ratios(runs: Runs, ours: str, theirs: str, place: str,
                  count: int) -> list[float]:
    """Our start over theirs, run by run within the same round (side by side)."""
    by_round: dict[int, dict[str, float]] = defaultdict(dict)
    for run in runs:
        if "error" not in run and run["place"] == place and run["nodes"] == count:
            by_round[run["round"]][run["variant"]] = run["start"]
    return [times[ours] / times[theirs] for times in by_round.values()
            if ours in times and theirs in times]


def targets(runs: Runs) -> list[str]:
    counts = sorted({run["nodes"] for run in runs})
    places = [p for p in ("node1", "login") if any(run["place"] == p for run in runs)]
    lines = ["Start over the upstream tool, median of the round-by-round ratios (min-max); "
             "targets: <= 0.5 x SSHCluster, <= 0.6 x dask-mpi.", "",
             "| nodes | from | ssh / SSHCluster | srun / SSHCluster | mpi / SSHCluster "
             "| ssh / dask-mpi | srun / dask-mpi | mpi / dask-mpi |",
             "| ---: | --- | --- | --- | --- | --- | --- | --- |"]
    for count in counts:
        for place in places:
            cells = []
            for theirs, limit in (("sshcluster", 0.5), ("dask-mpi", 0.6)):
                for ours in OURS:
                    ratios = paired_ratios(runs, ours, theirs, place, count)
                    if not ratios:
                        cells.append("-")
                        continue
                    median = statistics.median(ratios)
                    mark = "" if median <= limit else " ✗"
                    cells.append(f"{median:.2f} ({min(ratios):.2f}-{max(ratios):.2f}){mark}")
            lines.append(f"| {count} | {place} | " + " | ".join(cells) + " |")
    return lines


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares a + b·n."""
    xs = [float(x) for x, _ in points]
    ys = [y for _, y in points]
    if len(set(xs)) < 2:
        return ys[0] if ys else 0.0, 0.0
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
             / sum((x - mean_x) ** 2 for x in xs))
    return mean_y - slope * mean_x, slope


def head_points(runs: Runs, variant: str, key: str) -> list[tuple[int, float]]:
    """Per node count, the median from the login host of `key` (head_cpu or a head part)."""
    groups = grouped(runs)
    points = []
    for (name, place, count), rows in sorted(groups.items(), key=lambda item: item[0][2]):
        if name == variant and place == "login":
            values = [r["head_cpu"] if key == "head_cpu" else r["head_parts"].get(key, 0.0)
                      for r in rows]
            points.append((count, statistics.median(values)))
    return points


def head_model(runs: Runs) -> list[str]:
    lines = ["| variant (from login) | part | fixed (s) | per node (ms) | "
             + " | ".join(f"{n} nodes (s)" for n in EXTRAPOLATE) + " |",
             "| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in EXTRAPOLATE) + " |"]
    parts = {"ssh": ["head_cpu", "ssh", "supervisor", "exited"],
             "ssh-sntrup": ["head_cpu", "ssh"],
             "srun": ["head_cpu", "srun", "supervisor", "exited"],
             "mpi": ["head_cpu", "mpirun", "supervisor", "exited"]}
    for variant in [*OURS, "ssh-sntrup", "sshcluster", "dask-mpi"]:
        for key in parts.get(variant, ["head_cpu"]):
            points = head_points(runs, variant, key)
            if len(points) < 2:
                continue
            fixed, per_node = fit(points)
            name = {"head_cpu": "all of the head node", "exited": "start command (exited)",
                    "supervisor": "supervisor + scheduler"}.get(key, f"{key} processes")
            lines.append(f"| {LABELS[variant]} | {name} | {fixed:.2f} | {per_node * 1000:.0f} | "
                         + " | ".join(f"{fixed + per_node * n:.1f}" for n in EXTRAPOLATE) + " |")
    return lines


def plots(runs: Runs, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = grouped(runs)
    variants = [v for v in LABELS if any(run["variant"] == v for run in runs)]
    made = []
    for key, title, per_node, name in (
            ("start", "start until all workers are connected (s)", False, "scale-start.png"),
            ("stop", "stop until no process is left (s)", False, "scale-stop.png"),
            ("cpu", "CPU seconds per node, start to clean", True, "scale-cpu.png")):
        figure, axes = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
        for axis, place in zip(axes, ("node1", "login")):
            for variant in variants:
                rows = sorted((count, [r[key] / (count if per_node else 1) for r in found])
                              for (v, p, count), found in groups.items()
                              if v == variant and p == place)
                if not rows:
                    continue
                xs = [count for count, _ in rows]
                mid = [statistics.median(values) for _, values in rows]
                low = [m - min(values) for m, (_, values) in zip(mid, rows)]
                high = [max(values) - m for m, (_, values) in zip(mid, rows)]
                style = "-o" if variant in OURS else "--s"
                axis.errorbar(xs, mid, yerr=[low, high], fmt=style, capsize=3, markersize=4,
                              label=LABELS[variant])
            axis.set_xscale("log", base=2)
            counts = sorted({run["nodes"] for run in runs})
            axis.set_xticks(counts, [str(count) for count in counts])
            axis.set_xlabel("nodes")
            where = "node1 (in the node list)" if place == "node1" else "login host"
            axis.set_title(f"from {where}")
            axis.grid(True, alpha=0.3)
        axes[0].set_ylabel("seconds")
        handles, labels = axes[0].get_legend_handles_labels()
        more = axes[1].get_legend_handles_labels()
        for handle, label in zip(*more):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
        figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
        figure.suptitle(f"{title}: median, bars min-max; 2-core shared machine")
        figure.tight_layout(rect=(0, 0.1, 1, 1))
        path = folder / name
        figure.savefig(path, dpi=90)
        plt.close(figure)
        made.append(path)
    return made


def write_report(results: dict[str, Any], folder: Path) -> None:
    runs: Runs = results["runs"]
    plots(runs, folder)
    failures = [f"- {r['nodes']} nodes, {LABELS[r['variant']]} from {r['place']}, round "
                f"{r['round']}: {r['error'].splitlines()[0][:200]}"
                for r in runs if "error" in r]
    loads = [run["load"] for run in runs]
    block = [BEGIN,
             f"Run of {results['started']} UTC: {max(run['round'] for run in runs)} of "
             f"{results['rounds']} round(s) done, load average "
             f"{min(loads):.1f}-{max(loads):.1f} during the runs (2 cores, shared). Seconds; "
             "median (min-max) over the rounds.", "",
             *table(runs), "", *targets(runs), "",
             "Head node's own CPU from the login host (least squares on the medians per node "
             "count, a + b·n; see the model above):", "", *head_model(runs), ""]
    if failures:
        block += ["Failed runs:", "", *failures, ""]
    block.append(END)
    readme = folder / "README.md"
    text = readme.read_text() if readme.exists() else ""
    before, found, rest = text.partition(BEGIN)
    after = rest.partition(END)[2] if found else "\n"
    readme.write_text(before + "\n".join(block) + after)
