"""`setup-dask.sh`: resolve options, look at what is there, plan, check, then apply."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from daskhpc import __version__, manifest, paths
from daskhpc.errors import DaskhpcError
from daskhpc.install import apply, plan
from daskhpc.install.options import InstallOptions, resolve
from daskhpc.install.steps.base import Step
from daskhpc.install.steps.env import build_is_complete
from daskhpc.manifest import Manifest
from daskhpc.options import SetupOptions


def _gather_state(options: InstallOptions, record: Manifest) -> plan.State:
    env = record.env
    complete = bool(env and build_is_complete(Path(env.build))
                    and os.path.realpath(env.link) == os.path.realpath(env.build))
    return plan.State(
        env=env,
        env_complete=complete,
        tools=options.backend.find_tools(options.tools_dir),
        venv_available=all(importlib.util.find_spec(name) is not None
                           for name in ("venv", "ensurepip")),
    )


def _nearest_existing(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path("/")


def _check_writable(path: Path) -> None:
    existing = _nearest_existing(path)
    if existing != path and not existing.is_dir():
        raise DaskhpcError(f"cannot create {path}: {existing} is not a directory; "
                           "choose another location")
    folder = existing if existing.is_dir() and existing != path else existing.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DaskhpcError(f"cannot write to {folder} (needed for {path}); choose a location "
                           "you can write to, or ask its owner")


def preflight(options: InstallOptions, record: Manifest, state: plan.State,
              steps: list[Step]) -> None:
    """Refuse, before changing anything, to touch what is not ours or cannot be written."""
    previous = record.settings.get("env_link")
    if previous and previous != str(options.env_link):
        raise DaskhpcError(f"daskhpc is already installed with its environment at {previous}; "
                           "run remove-dask.sh first to install it elsewhere")
    if any(step.needs_venv for step in steps) and not state.venv_available:
        raise DaskhpcError(f"{sys.executable} cannot create virtual environments (no venv/"
                           "ensurepip; Debian: apt install python3-venv) and uv is not on PATH; "
                           "install one of them, or pass --python with a complete Python")
    link = options.env_link
    if (link.exists() or link.is_symlink()) and not record.has("env-link", link):
        raise DaskhpcError(f"{link} already exists and was not made by daskhpc; remove it or "
                           "choose another --prefix/--name")
    targets = [link, options.builds_dir, options.manifest_path, options.log_dir]
    for step in steps:
        targets.extend(step.preflight(record, link))
    for target in targets:
        if not target.is_relative_to(link) or target == link:
            _check_writable(target)


def _confirm() -> None:
    answer = input(f"Install daskhpc {__version__} as planned above? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise DaskhpcError("nothing was changed (answered no); pass --yes to skip the question",
                           exit_code=1)


def _path_advice(options: InstallOptions) -> None:
    """Setup's last lines: exactly what to type to use the commands now.

    A shell started before setup does not find a new ~/bin: Debian's ~/.profile puts it on PATH
    only if it existed at login (and --add-to-path's ~/.bashrc line counts only in new shells).
    """
    if options.system:
        if options.modulefiles_dir:
            print(f"Users: module use {options.modulefiles_dir}; module load daskhpc")
        else:
            print(f"Users: add {options.bin_dir} to PATH (or pass --modulefiles-dir)")
        return
    if str(options.bin_dir) in os.environ.get("PATH", "").split(os.pathsep):
        print("Next: start-dask-cluster")
        return
    print(f"{options.bin_dir} is not on this shell's PATH yet. To use the commands now, type:")
    print(f'    export PATH="{options.bin_dir}:$PATH"')
    if options.rc_file is not None:
        print(f"New shells find them through {options.rc_file} (--add-to-path).")
    elif options.bin_dir == paths.default_bin_dir():
        print("or open a new terminal: a login shell adds ~/bin once it exists (re-run with "
              "--add-to-path to add it in ~/.bashrc for every shell).")
    else:
        print("New shells need that line too: add it to ~/.bashrc, or re-run setup with "
              "--add-to-path.")
    print("Then: start-dask-cluster")


def run(asked: SetupOptions) -> int:
    options = resolve(asked)
    record = manifest.load(options.manifest_path) or Manifest(path=options.manifest_path)
    state = _gather_state(options, record)
    template = (options.repo / "bin" / "wrapper.sh.in").read_text()
    steps = plan.make_plan(options, state, template)
    preflight(options, record, state, steps)
    installer = apply.Installer(options, record, state)

    if options.backend.note:
        print(options.backend.note, file=sys.stderr, flush=True)
    if asked.dry_run or not (asked.yes or not sys.stdin.isatty()):
        print(f"daskhpc {__version__} setup plan ({options.backend.name} backend):")
        pending = installer.pending(steps)
        for step in steps:
            marker = "" if step in pending else "  (up to date)"
            print(f"  - {step.summary}{marker}")
        if asked.dry_run:
            print("dry run: nothing was changed")
            return 0
        _confirm()

    record.system = options.system
    record.daskhpc_version = __version__
    # What the environment is made with (plain re-runs keep it: options.resolve) is recorded
    # once the install has succeeded: a failed attempt leaves the previous one's.
    made_with = options.backend.settings(options)
    record.settings = {**(record.settings or made_with), "env_link": str(options.env_link)}
    if options.system:
        os.umask(0o022)
    try:
        installer.apply(steps)
    except KeyboardInterrupt:
        raise DaskhpcError("interrupted; the previous install is unchanged; run setup-dask.sh "
                           "again to finish", exit_code=130) from None
    except OSError as error:
        raise DaskhpcError(f"{error}; {apply.RETRY_HINT}") from None
    finally:
        installer.log.close()
    if record.settings != {"env_link": str(options.env_link), **made_with}:
        record.settings = {"env_link": str(options.env_link), **made_with}
        record.save()
    if installer.changed:
        print(f"daskhpc is installed: environment {options.env_link}, kernel "
              f"{options.display_name!r}, wrappers in {options.bin_dir}")
    else:
        print("daskhpc is installed and up to date: nothing to do")
    _path_advice(options)
    return 0
