"""The doctor command line that matches a start: printed by start-dask-cluster when it fails."""

from __future__ import annotations

import shlex

from daskhpc.options import StartOptions

# start-dask-cluster's options that change what the doctor checks, as they are spelled.
_CHECKED_OPTIONS = ("hostfile", "hosts", "launcher", "interface", "local_directory",
                    "scheduler_file", "memory_limit", "workers_per_node", "threads_per_worker",
                    "jobs")


def command_line(args: StartOptions) -> str:
    """The doctor command that checks what start-dask-cluster was asked to do."""
    words = ["dask-cluster-doctor"]
    for name in _CHECKED_OPTIONS:
        value = getattr(args, name, None)
        if value is not None and value not in ("auto", 0):
            words += [f"--{name.replace('_', '-')}", str(value)]
    if not args.tls:
        words.append("--no-tls")
    return shlex.join(words)
