"""How the start command leaves the supervisor running on its own: a fresh interpreter.

`spawn_supervisor()` (in the start command, or any process, threaded or not: a Jupyter kernel
running the Python API) starts `python -m daskhpc.cluster.head.detach CLUSTER_DIR` with
subprocess, which uses vfork/posix_spawn and runs no Python code between fork and exec, so it is
safe where os.fork() is not (a fork copies other threads' locks in whatever state they were).
The child gets its own session (a terminal's ^C or hang-up does not reach it) and works in /.
The plan reaches it as the cluster's private spec.json (0600, named on the command line); its
stderr goes to the supervisor log; it talks to the start command over its stdin and stdout
(daskhpc.cluster.messages).

`main()` (the child) starts the node sessions first, then imports the supervisor (asyncio,
distributed): ssh handshakes and the workers' own imports overlap with that import.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Optional

MODULE = "daskhpc.cluster.head.detach"


def spawn_supervisor(python: str, pythonpath: str, cluster_dir: Path,
                     log: Path) -> subprocess.Popen[bytes]:
    """The supervisor of the cluster planned in cluster_dir, detached, with pipes to it."""
    log_descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    old = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": f"{pythonpath}{os.pathsep}{old}" if old else pythonpath}
    try:
        return subprocess.Popen(
            [python, "-m", MODULE, str(cluster_dir)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=log_descriptor, cwd="/", env=env,
            start_new_session=True, close_fds=True,
        )
    finally:
        os.close(log_descriptor)


def raise_open_file_limit() -> None:
    """Open files: the soft limit up to the hard one, as `dask scheduler` does for itself.

    The supervisor holds a pipe to every node session and its scheduler a few connections to
    every worker: at the usual soft limit of 1,024 a start would fail somewhere past 300 nodes.
    The hard limit is the site's and stays; an unlimited one means the kernel's own maximum.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard
    if hard == resource.RLIM_INFINITY:
        try:
            wanted = int(Path("/proc/sys/fs/nr_open").read_text())
        except (OSError, ValueError):
            return
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main(argv: Optional[list[str]] = None) -> None:
    code = 1
    try:
        raise_open_file_limit()
        from daskhpc.cluster.launchers import get_launcher
        from daskhpc.cluster.spec import read_spec

        spec = read_spec(Path((sys.argv[1:] if argv is None else argv)[0]))
        sessions = get_launcher(spec.launcher, spec).launch()
        from daskhpc.cluster.head.supervisor import Supervisor

        code = Supervisor(spec, sessions).run()
    except BaseException:
        traceback.print_exc()
    finally:
        # Everything the supervisor started is ended and verified by it; skipping the
        # interpreter's teardown (distributed's threads) is the point.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
