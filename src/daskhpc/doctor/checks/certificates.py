"""Certificates: the environment's cryptography makes a cluster's TLS files (tried in a throw-away
directory), and the state directory where they live is private."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

from daskhpc import paths
from daskhpc.doctor.context import Context
from daskhpc.doctor.findings import Finding, ok, problem

CHECK = "certificates"


def _exposed(directory: Path, mask: int) -> bool:
    try:
        return bool(directory.stat().st_mode & mask)
    except OSError:
        return False  # not made yet: start makes it private


def check(context: Context) -> list[Finding]:
    found = []
    if context.args.tls:
        from daskhpc.cluster.tls.material import create_standalone_tls

        try:
            with tempfile.TemporaryDirectory(prefix="daskhpc-doctor-") as scratch:
                create_standalone_tls(Path(scratch) / "tls")
        except Exception as error:  # whatever a broken cryptography raises
            found.append(problem(CHECK, f"the cluster's TLS certificates cannot be made "
                                        f"({type(error).__name__}: {error})",
                                 "rebuild the environment: setup-dask.sh --update"))
    state, clusters = paths.state_dir(), paths.clusters_dir()
    if _exposed(state, stat.S_IWGRP | stat.S_IWOTH):
        found.append(problem(CHECK, f"others can write in {state}, where your clusters' keys live",
                             f"chmod go-w {state}"))
    if _exposed(clusters, stat.S_IRWXG | stat.S_IRWXO):
        found.append(problem(CHECK, f"others can open {clusters}, where your clusters' keys live",
                             f"chmod 700 {clusters}"))
    if _exposed(paths.user_ca_dir(), stat.S_IRWXG | stat.S_IRWXO):
        found.append(problem(CHECK, f"others can open {paths.user_ca_dir()}, your CA: its key "
                                    "may have been read",
                             f"with no cluster running: rm -r {paths.user_ca_dir()} (the next "
                             "start makes a new CA)"))
    if found:
        return found
    what = "TLS certificates can be made" if context.args.tls else "plain tcp:// (--no-tls)"
    return [ok(CHECK, f"{what}; only you can write in {state}")]
