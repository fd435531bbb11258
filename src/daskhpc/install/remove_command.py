"""`remove-dask.sh`: take away exactly what the manifest lists, newest first, nothing else.

Idempotent: a second run finds no manifest and says so. The manifest is saved after every
removal, so an interrupted remove can simply be run again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

from daskhpc import __version__, manifest, paths
from daskhpc.errors import DaskhpcError
from daskhpc.manifest import Manifest
from daskhpc.options import RemoveOptions

ENV_KINDS = ("env-link", "env-build")


def _manifest_path(options: RemoveOptions) -> Path:
    if options.system:
        prefix = Path(os.path.abspath(options.prefix)) if options.prefix else (
            paths.default_system_prefix(__version__))
        return paths.system_manifest_file(prefix)
    if options.prefix:
        raise DaskhpcError("--prefix is for --system installs; a user install is found from "
                           "its manifest, so leave it out")
    return paths.manifest_file()


def _kept_for_env(record: Manifest) -> set[str]:
    """With --keep-env: the environment and every directory that holds it stay."""
    kept: set[str] = set()
    for item in record.items:
        if item.kind in ENV_KINDS:
            kept.add(item.path)
            kept.update(str(parent) for parent in Path(item.path).parents)
    return kept


def _stopped_clusters(options: RemoveOptions) -> list[Path]:
    """A full user remove also takes the state its clusters left (logs, certificates): it is
    daskhpc's own. A cluster not yet stopped may still run: refuse before changing anything."""
    if options.system or options.keep_env:
        return []
    from daskhpc.cluster.state import all_clusters

    clusters = all_clusters()
    for state in clusters:
        if not state.stopped:
            raise DaskhpcError(f"cluster {state.cluster_id} has not been stopped; run "
                               "stop-dask-cluster --all first, then remove again")
    return [state.directory for state in clusters]


def _user_tls(options: RemoveOptions) -> list[Path]:
    """With the clusters' state goes the user's CA and client certificates (their first
    cluster made them)."""
    if options.system or options.keep_env:
        return []
    return [path for path in (paths.user_ca_dir(), paths.client_tls_dir()) if path.exists()]


def _remove_cluster_state(directories: list[Path]) -> None:
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(OSError):  # only when empty: anything else there stays
        paths.clusters_dir().rmdir()


def run(options: RemoveOptions) -> int:
    path = _manifest_path(options)
    record = manifest.load(path)
    if record is None:
        print(f"nothing to remove: no daskhpc install recorded at {path}")
        return 0
    kept = _kept_for_env(record) | {str(p) for p in path.parents} if options.keep_env else set()
    doomed = [item for item in reversed(record.items) if item.path not in kept]
    cluster_state = _stopped_clusters(options)
    user_tls = _user_tls(options)
    if options.dry_run or not (options.yes or not sys.stdin.isatty()):
        print(f"remove-dask.sh would remove ({len(doomed)} items, newest first):")
        for item in doomed:
            detail = f": {item.line}" if item.line else ""
            print(f"  - {item.kind} {item.path}{detail}")
        if cluster_state:
            print(f"  - the state of {len(cluster_state)} stopped cluster(s) in "
                  f"{paths.clusters_dir()}")
        for directory in user_tls:
            print(f"  - your clusters' CA or client certificates: {directory}")
        if options.dry_run:
            print("dry run: nothing was changed")
            return 0
        if input("Remove these? [y/N] ").strip().lower() not in ("y", "yes"):
            raise DaskhpcError("nothing was removed (answered no); pass --yes to skip the "
                               "question", exit_code=1)
    _remove_cluster_state(cluster_state + user_tls)
    # Everything but directories first, saving the manifest as we go (a file setup made for its
    # lines after the lines: it is recorded after them); then the manifest itself; then the
    # (now empty) directories, which may include the one holding the manifest.
    contents = [i for i in doomed if i.kind != "dir"]
    for item in sorted(contents, key=lambda i: i.kind == "file-if-empty"):
        item.undo()
        record.forget(item.kind, item.path)
    if kept:  # the environment stays listed, so a later full remove takes it
        print(f"kept the environment {record.settings.get('env_link', '')} (--keep-env)")
    else:
        record.delete()
    for item in [i for i in doomed if i.kind == "dir"]:
        item.undo()
        if kept and not Path(item.path).exists():
            record.forget(item.kind, item.path)
    print("daskhpc is removed" + (" (environment kept)" if kept else ""))
    return 0
