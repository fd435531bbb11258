"""Helpers for the installer's tests: parsed options without running setup, tree snapshots."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from daskhpc.cli import build_parser


def setup_args(*argv: str):
    return build_parser("setup").parse_args(list(argv))


def tree_snapshot(root: Path) -> dict[str, str]:
    """Every path under root with what it is and holds: equal snapshots mean nothing changed."""
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
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                snapshot[key] = f"file:{oct(path.stat().st_mode & 0o777)}:{digest}"
    return snapshot
