"""MPI across simulated nodes: the environment and hostfile mpirun needs to reach them, with
Open MPI (the system's default mpirun) or MPICH's Hydra (Debian's mpirun.mpich)."""

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


MPICH_MPIRUN = Path("/usr/bin/mpirun.mpich")


def mpich_env(bed: NodeBed, bin_dir: Path) -> dict[str, str]:
    """PATH and Hydra settings that make `mpirun` MPICH's, reaching the nodes over the bed's ssh
    (as a site's `module load mpich` would put its mpirun first on PATH)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    # Hydra starts hydra_pmi_proxy from the directory its mpirun was found in.
    for name, target in (("mpirun", MPICH_MPIRUN), ("hydra_pmi_proxy", "/usr/bin/hydra_pmi_proxy")):
        (bin_dir / name).symlink_to(target)
    ssh = bin_dir / "bed-ssh"  # Hydra takes one program, not a command line
    ssh.write_text(f'#!/bin/sh\nexec {bed.ssh_command} "$@"\n')
    ssh.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HYDRA_LAUNCHER": "ssh",
            "HYDRA_LAUNCHER_EXEC": str(ssh)}
