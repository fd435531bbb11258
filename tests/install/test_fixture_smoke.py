"""The shared `dask_install` fixture gives a working install other helpers can build on."""

from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.install


def test_fixture_wrappers_and_kernel_are_usable(dask_install) -> None:
    status = subprocess.run(["dask-cluster-status", "--version"], env=dask_install.env(),
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert "daskhpc" in status.stdout
    assert (dask_install.kernel_dir / "kernel.json").exists()
    assert dask_install.python.exists()
