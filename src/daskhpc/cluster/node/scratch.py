"""Where a cluster keeps files on a machine's local disk: the one convention, and their removal.

Everything a cluster writes outside its state directory is in `<base>/daskhpc-<cluster id>-<place>`:
- base: node-local scratch, --local-directory, else $TMPDIR, /scratch/$USER, /tmp; never home;
- place: the node's name for its agent (one directory per worker below it), `scheduler` for the
  supervisor's scheduler (distributed's own workspace, otherwise left in /tmp for good),
  `job<i>` for the worker of --jobs batch job i (the same choice, made by its job script).
The base depends on the machine and the environment there, so whoever makes a directory records
its path (node agents in their record file, the start command in the spec), and whoever cleans
up after a process that could not (stop's reaping, a failed start) removes exactly that path.
Standard library only: node agents import it.
"""

from __future__ import annotations

import errno
import getpass
import os
import shutil
import stat
import time
from pathlib import Path
from typing import Optional

PREFIX = "daskhpc-"
SCHEDULER = "scheduler"


def scratch_base(local_directory: Optional[str]) -> Path:
    """Node-local scratch: --local-directory, else $TMPDIR, /scratch/$USER, /tmp; never home."""
    if local_directory:
        return Path(os.path.expandvars(local_directory)).expanduser()
    candidates = [os.environ.get("TMPDIR"), f"/scratch/{getpass.getuser()}", "/tmp"]
    for candidate in candidates:
        if candidate and _usable(candidate):
            return Path(candidate)
    return Path("/tmp")


def _usable(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def cluster_directory(base: Path, cluster_id: str, place: str) -> Path:
    return base / f"{PREFIX}{cluster_id}-{place}"


def node_directory(local_directory: Optional[str], cluster_id: str, host: str) -> Path:
    """A node agent's directory (its workers' directories below it), on that node."""
    return cluster_directory(scratch_base(local_directory), cluster_id, host)


def scheduler_directory(local_directory: Optional[str], cluster_id: str) -> Path:
    """The scheduler's, on the machine the start command runs on: --local-directory only if
    usable there (it is meant for the nodes), else the default choice."""
    usable = local_directory if local_directory and _usable(str(scratch_base(local_directory))) \
        else None
    return cluster_directory(scratch_base(usable), cluster_id, SCHEDULER)


def job_script_lines(local_directory: Optional[str], cluster_id: str, place: str) -> list[str]:
    """For a batch job's script (sh or bash): the same directory, chosen on the job's node, in
    $DASKHPC_SCRATCH, and removed when the script ends: normally, or on scancel or the walltime
    (SIGTERM; bash runs its EXIT trap then, at once, while the worker closes)."""
    if local_directory:
        choose = f'base="{local_directory}"'  # the shell expands $VARIABLES in it, as we do
    else:
        choose = ('for base in "$TMPDIR" "/scratch/$USER" /tmp; do '
                  '[ -n "$base" ] && [ -d "$base" ] && [ -w "$base" ] && break; done')
    return [choose, f'DASKHPC_SCRATCH="$base/{PREFIX}{cluster_id}-{place}"',
            'trap \'rm -rf "$DASKHPC_SCRATCH"\' EXIT']


def make(path: Path) -> None:
    """Create a cluster's directory (0700), its base too if missing. The name can be guessed
    (the cluster id shows in `ps`) and the base is often a shared /tmp: an existing entry is
    taken only if it is a real directory of ours, never one another user planted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise FileExistsError(errno.EEXIST, "exists and is not a directory of yours",
                                  str(path)) from None
        os.chmod(path, 0o700)


def remove(path: Optional[str]) -> None:
    """Remove a recorded directory (its processes are gone); a second pass catches files a
    process that was just killed still wrote."""
    if not path or not os.path.basename(path).startswith(PREFIX):
        return  # never anything but a directory of this convention
    for _ in range(3):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.lexists(path):
            return
        time.sleep(0.05)
