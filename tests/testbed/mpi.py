"""Open MPI across simulated nodes: the environment and hostfile mpirun needs to reach them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

from testbed.nodes import NodeBed


def missing_requirements() -> Optional[str]:
    """Why mpirun cannot run here, or None when it can."""
    if shutil.which("mpirun") is None:
        return "MPI tests need mpirun (apt-get install openmpi-bin libopenmpi-dev)"
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "MPI tests need mpi4py in the test environment"
    return None


def run_as_root_env() -> dict[str, str]:
    """Open MPI refuses root unless told twice; tests run as root in CI."""
    if os.geteuid() != 0:
        return {}
    return {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def across_nodes_env(bed: NodeBed) -> dict[str, str]:
    """mpirun settings to start ranks on the bed's nodes over its ssh and its subnet only."""
    return {
        **run_as_root_env(),
        "OMPI_MCA_plm_rsh_agent": bed.ssh_command,
        # Tree spawn would have every node ssh onward to others; keep all ssh on the first node.
        "OMPI_MCA_plm_rsh_no_tree_spawn": "1",
        "OMPI_MCA_btl_tcp_if_include": bed.cidr,
        "OMPI_MCA_oob_tcp_if_include": bed.cidr,
    }


def write_hostfile(bed: NodeBed, path: Path, slots: int = 1) -> Path:
    """An Open MPI hostfile naming every node of the bed."""
    path.write_text("".join(f"{node.hostname} slots={slots}\n" for node in bed.nodes))
    return path
