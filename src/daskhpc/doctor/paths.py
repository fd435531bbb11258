"""Can a file or directory be made at a path? Tried for real, leaving nothing behind.

start-dask-cluster runs these before it starts anything (a bad --scheduler-file or
--local-directory is one line and exit 2, not a traceback from a node); the doctor runs the
same on every node. Standard library only, and fast: one mkdir/rmdir or create/unlink.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

from daskhpc.doctor.mounts import existing_part


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def directory_problem(path: Path) -> Optional[str]:
    """Why `mkdir -p path` and creating files in it would fail here, or None when it works."""
    start = existing_part(path)
    if not start.is_dir():
        return f"{start} is not a directory"
    try:  # what the agent will do: make a directory inside (after any missing parents)
        os.rmdir(tempfile.mkdtemp(prefix=".daskhpc-check-", dir=start))
    except OSError as error:
        where = start if start == Path(os.path.abspath(path)) else f"{start} (to create {path})"
        return f"cannot create directories in {where}: {_reason(error)}"
    return None


def file_problem(path: Path) -> Optional[str]:
    """Why writing the file `path` (its directory made if missing) would fail, or None."""
    if path.is_dir():
        return f"{path} is a directory"
    parent = path.parent
    if not parent.is_dir():
        return directory_problem(parent)
    try:
        descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.check-", dir=parent)
    except OSError as error:
        return f"cannot create files in {parent}: {_reason(error)}"
    os.close(descriptor)
    os.unlink(name)
    return None


def check_start_paths(scheduler_file: Path, local_directory: Optional[str],
                      here_is_a_node: bool) -> None:
    """start-dask-cluster's up-front subset of the doctor: the scheduler file can be written and
    (when this machine runs workers) the local directory can hold worker directories."""
    from daskhpc.cluster.node.scratch import scratch_base
    from daskhpc.errors import DaskhpcError

    reason = file_problem(scheduler_file)
    if reason:
        raise DaskhpcError(f"--scheduler-file {scheduler_file}: {reason}; give a path in a "
                           "directory of yours")
    if local_directory and here_is_a_node:
        reason = directory_problem(scratch_base(local_directory))
        if reason:
            raise DaskhpcError(f"--local-directory {local_directory}: {reason}; give a "
                               "node-local directory that exists on every node")
