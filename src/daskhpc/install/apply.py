"""Carry out an install plan: apply each pending step in order. The installer is the steps'
context (install/steps/base.py): it records every created item in the manifest as it goes
and runs commands into the install log."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from daskhpc.install.options import InstallOptions
from daskhpc.install.plan import State
from daskhpc.install.runner import Log, child_environment
from daskhpc.install.steps.base import Step
from daskhpc.install.steps.env import SWITCH_PREFIX, BuildEnv
from daskhpc.manifest import Manifest

RETRY_HINT = "the previous install is unchanged; fix the cause and run setup-dask.sh again"


class Installer:
    def __init__(self, options: InstallOptions, manifest: Manifest, state: State) -> None:
        self.options = options
        self.manifest = manifest
        self.tools = state.tools
        self.current_build = Path(state.env.build) if state.env and state.env_complete else None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.log = Log(options.log_dir / f"setup-{stamp}-{os.getpid()}.log", self._log_opened)
        self.changed = False

    # -- the steps' context ----------------------------------------------------------------

    def _log_opened(self, path: Path) -> None:
        self.ensure_dir(path.parent)
        self.manifest.record("file", path)

    def ensure_dir(self, path: Path) -> None:
        """mkdir -p, recording each directory it creates (so remove takes exactly those)."""
        missing = []
        for candidate in [path, *path.parents]:
            if candidate.exists():
                break
            missing.append(candidate)
        for directory in reversed(missing):
            self.manifest.record("dir", directory)
            directory.mkdir(exist_ok=True)
            if self.options.system:
                directory.chmod(0o755)

    def command_environment(self) -> dict[str, str]:
        if self.options.cache_is_ours:
            self.ensure_dir(self.options.cache_dir.parent)
            self.manifest.record("tree", self.options.cache_dir)
        # pip (fetching uv, or the last-resort build) caches next to uv: one recorded place.
        return child_environment({"UV_CACHE_DIR": str(self.options.cache_dir),
                                  "PIP_CACHE_DIR": str(self.options.cache_dir / "pip")})

    def run(self, argv: list[str], what: str, **extra_env: str) -> str:
        return self.log.run(argv, what, RETRY_HINT, {**self.command_environment(), **extra_env})

    # -- applying --------------------------------------------------------------------------

    def pending(self, steps: list[Step]) -> list[Step]:
        """The steps that change something. Files inside the env are judged by the current
        build, so when a new build is coming they are all pending: it has none of them yet."""
        rebuilding = any(isinstance(step, BuildEnv) for step in steps)
        return [step for step in steps
                if (rebuilding and step.inside_env(self.options.env_link))
                or not step.is_current(self)]

    def apply(self, steps: list[Step]) -> None:
        self.ensure_dir(self.manifest.path.parent)  # recorded before the manifest lands in it
        self.discard_unfinished_builds()
        pending = self.pending(steps)
        for number, step in enumerate(pending, 1):
            print(f"[{number}/{len(pending)}] {step.summary}", flush=True)
            started = time.monotonic()
            step.apply(self)
            self.changed = True
            if time.monotonic() - started > 2:
                print(f"      done in {time.monotonic() - started:.1f} s", flush=True)
        self.log.close()

    def discard_unfinished_builds(self) -> None:
        """Builds other than the current one: half-built by a killed run, or superseded."""
        for item in list(self.manifest.items):
            if item.kind != "env-build" or Path(item.path) == self.current_build:
                continue
            shutil.rmtree(item.path, ignore_errors=True)
            self.manifest.forget("env-build", item.path)
        for item in list(self.manifest.items):
            if item.kind == "file" and Path(item.path).name.startswith(SWITCH_PREFIX):
                Path(item.path).unlink(missing_ok=True)
                self.manifest.forget("file", item.path)
