"""The environment: build it behind the env link, or reinstall only daskhpc into it.

Crash safety: the environment is built in a fresh directory under <env>.builds/ and the env
link (the only path wrappers and the kernel use) is switched to it with one atomic rename once
the build is complete. A build is recorded in the manifest before it starts, so a killed run
leaves nothing unrecorded, and the next run discards it (install/apply.py).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from daskhpc.files import make_shared_read_only, swap_link
from daskhpc.install.backends.base import site_packages
from daskhpc.install.steps.base import Context, Step
from daskhpc.manifest import EnvRecord

BUILD_MARKER = ".daskhpc-build.json"  # written last: its presence means the build is complete
SWITCH_PREFIX = ".daskhpc-switch-"  # the temporary link of a switch


def build_is_complete(build: Path) -> bool:
    return (build / BUILD_MARKER).exists()


def _install_package(context: Context, build: Path) -> None:
    for argv in context.options.backend.package_commands(context, build):
        context.run(argv, "installing daskhpc into the environment")


@dataclass(frozen=True)
class BuildEnv(Step):
    """Records: the builds folder (dir), the build (env-build), the env link (env-link)."""

    inputs_sha256: str = ""  # what the build is made from (backend.rebuild_inputs)
    package_sha256: str = ""  # daskhpc's code it gets

    kind: ClassVar[str] = "env"

    def apply(self, context: Context) -> None:
        options = context.options
        build = options.builds_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{self.inputs_sha256[:8]}"
        context.ensure_dir(options.builds_dir)
        context.manifest.record("env-build", build)  # before it exists: a kill leaves it listed
        try:
            for argv in options.backend.build_commands(context, build):
                context.run(argv, "building the environment")
            _install_package(context, build)
            (build / BUILD_MARKER).write_text(
                json.dumps({"inputs_sha256": self.inputs_sha256}) + "\n")
            if options.system:
                make_shared_read_only(build)
        except BaseException:  # failed or interrupted: the half-built env goes, the old stays
            shutil.rmtree(build, ignore_errors=True)
            context.manifest.forget("env-build", build)
            raise
        self._switch_link(context, build)
        previous, context.current_build = context.current_build, build
        context.manifest.set_env(EnvRecord(str(options.env_link), str(build),
                                           options.backend.name, self.inputs_sha256,
                                           self.package_sha256))
        if previous is not None and previous != build:
            shutil.rmtree(previous, ignore_errors=True)
            context.manifest.forget("env-build", previous)

    @staticmethod
    def _switch_link(context: Context, build: Path) -> None:
        link = context.options.env_link
        context.ensure_dir(link.parent)
        context.manifest.record("env-link", link)
        temporary = link.with_name(f"{SWITCH_PREFIX}{link.name}-{os.getpid()}")
        context.manifest.record("file", temporary)
        swap_link(link, build, temporary)  # users see the old build or the new, never half
        context.manifest.forget("file", temporary)


@dataclass(frozen=True)
class ReinstallPackage(Step):
    """daskhpc's code changed, the environment's inputs did not. Records nothing new."""

    package_sha256: str = ""

    kind: ClassVar[str] = "package"

    def apply(self, context: Context) -> None:
        build, record = context.current_build, context.manifest.env
        assert build is not None and record is not None
        _install_package(context, build)
        if context.options.system:
            make_shared_read_only(site_packages(build))
        context.manifest.set_env(EnvRecord(record.link, record.build, record.backend,
                                           record.inputs_sha256, self.package_sha256))
