"""Which filesystem a path is on, read from the mount table, and whether it is node-local.

Worker directories on a parallel or network filesystem make starts slow and fail with
"Could not acquire workspace lock"; these types are never node-local. Standard library only:
it runs in the node probe and in start-dask-cluster's up-front checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

MOUNT_TABLE = Path("/proc/self/mounts")

# Filesystems shared between nodes (or served over the network), by their /proc/mounts type.
SHARED_TYPES = {
    "nfs", "nfs4", "lustre", "gpfs", "beegfs", "ceph", "cephfs", "cifs", "smb3", "smbfs",
    "panfs", "wekafs", "glusterfs", "orangefs", "pvfs2", "afs", "9p", "fuse",
}


@dataclass(frozen=True)
class Mount:
    source: str
    point: str
    fstype: str

    @property
    def shared(self) -> bool:
        """A network/parallel filesystem, or FUSE (sshfs, ceph-fuse, ...). fuseblk is a local
        disk through FUSE (ntfs-3g, exfat) and is not flagged."""
        return self.fstype in SHARED_TYPES or self.fstype.startswith("fuse.")


def _unescape(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as octal escapes (\\040...)."""
    out, index = [], 0
    while index < len(field):
        if field[index] == "\\" and field[index + 1:index + 4].isdigit():
            out.append(chr(int(field[index + 1:index + 4], 8)))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return "".join(out)


def parse(text: str) -> list[Mount]:
    """Lines `source point type options dump pass`, in mount order."""
    mounts = []
    for row in text.splitlines():
        fields = row.split()
        if len(fields) >= 3:
            mounts.append(Mount(_unescape(fields[0]), _unescape(fields[1]), fields[2]))
    return mounts


def mount_of(path: str, mounts: Sequence[Mount]) -> Optional[Mount]:
    """The mount a (resolved, absolute) path lives on: the longest matching mount point; the
    last one mounted wins where several share it (it hides the others)."""
    best: Optional[Mount] = None
    for mount in mounts:
        point = mount.point.rstrip("/") or "/"
        inside = path == point or path.startswith(point + "/") or point == "/"
        if inside and (best is None or len(point) >= len(best.point.rstrip("/") or "/")):
            best = mount
    return best


def existing_part(path: Path) -> Path:
    """The deepest existing directory on the way to path (what a mkdir -p would start from)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def filesystem_of(path: Path) -> Optional[Mount]:
    try:
        mounts = parse(MOUNT_TABLE.read_text())
    except OSError:
        return None
    return mount_of(os.path.realpath(existing_part(path)), mounts)
