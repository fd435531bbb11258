"""What clusters leave on the nodes' local disks: the check an admin makes with `ls /tmp`.

The simulated nodes share /tmp, so each directory's name says whose it is
(daskhpc.cluster.node.scratch): `daskhpc-<cluster id>-<node>` for a node agent and its workers,
`daskhpc-<cluster id>-scheduler` for the scheduler. Beds of other test sessions run beside ours,
so a test looks only at its own clusters (by id, from the user's state directory) or at the
directories its own Unix user owns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

ROOT = Path("/tmp")  # every node's default scratch (no $TMPDIR, no /scratch here)
SCHEDULER = "scheduler"


def cluster_ids(home: Path) -> list[str]:
    """The clusters a user started (stopped ones included: their state stays a while)."""
    clusters = home / ".local" / "state" / "daskhpc" / "clusters"
    return sorted(path.name for path in clusters.glob("*-*")) if clusters.is_dir() else []


def scratch_left(ids: Iterable[str], hosts: Optional[Iterable[str]] = None,
                 root: Path = ROOT) -> dict[str, list[str]]:
    """Per node (and "scheduler"), the scratch directories of these clusters still there.

    `hosts`: only the directories of these nodes' agents; None: every one, and the scheduler's.
    """
    wanted = None if hosts is None else set(hosts)
    found: dict[str, list[str]] = {}
    for cluster_id in ids:
        prefix = f"daskhpc-{cluster_id}-"
        for path in root.glob(f"{prefix}*"):
            place = path.name[len(prefix):]
            if wanted is None or place in wanted:
                found.setdefault(place, []).append(f"scratch {path}")
    return found


def owned_scratch(uid: int, root: Path = ROOT) -> list[str]:
    """Cluster scratch directories a user owns (a real Unix user of the hub tests)."""
    found = []
    for path in root.glob("daskhpc-*"):
        try:
            if path.lstat().st_uid == uid:
                found.append(str(path))
        except FileNotFoundError:  # removed while we looked
            continue
    return sorted(found)
