"""Helpers for the installer's tests: parsed options without running setup, tree snapshots."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

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
