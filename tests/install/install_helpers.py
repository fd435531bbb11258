"""Helpers for the installer's tests: parsed options without running setup, tree snapshots."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from testbed.install import user_environment

from daskhpc.cli import parse_options


def setup_args(*argv: str):
    return parse_options("setup", argv)


def tree_snapshot(root: Path, contents: bool = True) -> dict[str, str]:
    """Every path under root with what it is and holds: equal snapshots mean nothing changed.
    contents=False compares size and modification time instead of hashing (big trees)."""
    snapshot: dict[str, str] = {}
    for folder, directories, files in os.walk(root):
        for name in directories + files:
            path = Path(folder, name)
            key = str(path.relative_to(root))
            if path.is_symlink():
                snapshot[key] = "link:" + os.readlink(path)
            elif path.is_dir():
                snapshot[key] = "dir"
            else:
                status = path.stat()
                digest = (hashlib.sha256(path.read_bytes()).hexdigest() if contents
                          else f"{status.st_size}:{status.st_mtime_ns}")
                snapshot[key] = f"file:{oct(status.st_mode & 0o777)}:{digest}"
    return snapshot


def make_home(root: Path) -> Path:
    """A lived-in HOME: own tools in ~/bin, an own kernel, a ~/.bashrc with lines."""
    home = root / "home"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "my-tool").write_text("#!/bin/sh\necho mine\n")
    other_kernel = home / ".local" / "share" / "jupyter" / "kernels" / "other"
    other_kernel.mkdir(parents=True)
    (other_kernel / "kernel.json").write_text('{"argv": ["python3"], "display_name": "Other"}')
    (home / ".bashrc").write_text("export EDITOR=vi\nalias ll='ls -l'\n")
    return home


def as_nobody(site: Path, command: str) -> subprocess.CompletedProcess[str]:
    home = site / "nobody-home"
    home.mkdir(exist_ok=True)
    os.chown(home, 65534, 65534)
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           "bash", "-c", command], env=user_environment(home),
                          capture_output=True, text=True, timeout=120)
