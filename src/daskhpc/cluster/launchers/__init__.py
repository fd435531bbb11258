"""Launchers: how workers get onto the nodes. See base.py for the contract.

LAUNCHERS maps each --launcher name to "module:Class"; a new launcher is one sibling module and
one line here. Imported lazily so a launcher's own dependencies load only when it is used.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Mapping

from daskhpc.errors import DaskhpcError

if TYPE_CHECKING:
    from daskhpc.cluster.batch.base import Allocation
    from daskhpc.cluster.launchers.base import Launcher
    from daskhpc.cluster.spec import ClusterSpec

LAUNCHERS = {
    "local": "daskhpc.cluster.launchers.local:LocalLauncher",
    "ssh": "daskhpc.cluster.launchers.ssh:SshLauncher",
    "mpi": "daskhpc.cluster.launchers.mpi:MpiLauncher",
    "srun": "daskhpc.cluster.launchers.srun:SrunLauncher",
}


def choose(requested: str, allocation: Allocation,
           environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """The launcher to use and why (printed to the user).

    auto: a site or user setting DASKHPC_LAUNCHER wins (e.g. mpi where MPI is the only way onto
    the nodes); then the batch system's preference (inside a Slurm job, srun); other
    allocations, ssh; none, this machine only.
    """
    if requested != "auto":
        return requested, "asked for with --launcher"
    setting = environ.get("DASKHPC_LAUNCHER", "").strip()
    if setting and setting != "auto":
        if setting not in LAUNCHERS:
            raise DaskhpcError(f"DASKHPC_LAUNCHER={setting!r} is not a launcher; use one of "
                               f"{', '.join(LAUNCHERS)} (or unset it)")
        return setting, "set by DASKHPC_LAUNCHER (site or user setting)"
    from daskhpc.cluster import batch

    system = batch.by_name(allocation.kind)
    preferred = system.launcher(environ) if system is not None else None
    if preferred is not None:
        return preferred
    if allocation.kind == "none":
        return "local", "no allocation found: this machine only"
    return "ssh", f"{allocation.kind} allocation of {len(allocation.nodes)} node(s)"


def get_launcher(name: str, spec: ClusterSpec) -> Launcher:
    try:
        module_name, class_name = LAUNCHERS[name].split(":")
    except KeyError:
        known = ", ".join(LAUNCHERS)
        raise DaskhpcError(f"unknown launcher {name!r}; use one of {known}") from None
    module = importlib.import_module(module_name)
    launcher: Launcher = getattr(module, class_name)(spec)
    return launcher
