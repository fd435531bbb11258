"""Installer tests import daskhpc from the repo's src (the bootstrap does the same)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    """A world-traversable root (pytest's tmp dirs are 0700) with what an admin already has."""
    if os.geteuid() != 0:
        pytest.skip("--system test installs as root and runs a check as user 'nobody'")
    root = Path(tempfile.mkdtemp(prefix="daskhpc-site-", dir="/tmp"))
    root.chmod(0o755)
    for folder in ("admin", "opt/daskhpc", "share/jupyter/kernels/other", "modulefiles/gcc"):
        (root / folder).mkdir(parents=True)
    (root / "modulefiles/gcc/12").write_text("#%Module1.0\n")
    (root / "share/jupyter/kernels/other/kernel.json").write_text('{"argv": ["python3"]}')
    for folder, directories, _ in os.walk(root):
        for name in [".", *directories]:
            Path(folder, name).chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
