"""Steps that write files: wrappers, config and hooks, the Jupyter kernel, the PATH line."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

from daskhpc.errors import DaskhpcError
from daskhpc.files import make_shared_read_only, write_atomic
from daskhpc.install import generated
from daskhpc.install.backends.base import site_packages
from daskhpc.install.steps.base import Context, Step, claim
from daskhpc.manifest import Manifest

SITE_PACKAGES = "{site-packages}/"  # a path inside the current build's site-packages


@dataclass(frozen=True)
class WriteFile(Step):
    """Records the file (and folders it makes), unless it is inside the env: it goes with it."""

    kind: ClassVar[str] = "file"

    def resolved(self, env_link: Path) -> Path:
        if self.path.startswith(SITE_PACKAGES):
            return site_packages(env_link) / self.path[len(SITE_PACKAGES):]
        return Path(self.path)

    def inside_env(self, env_link: Path) -> bool:
        return self.path.startswith(SITE_PACKAGES) or Path(self.path).is_relative_to(env_link)

    def is_current(self, context: Context) -> bool:
        try:
            path = self.resolved(context.options.env_link)
            return path.read_text() == self.content and path.stat().st_mode & 0o777 == self.mode
        except (OSError, DaskhpcError):
            return False

    def preflight(self, owned: Manifest, env_link: Path) -> list[Path]:
        if self.path.startswith(SITE_PACKAGES):
            return []
        return [claim(Path(self.path), owned, env_link)]

    def apply(self, context: Context) -> None:
        env_link = context.options.env_link
        path = self.resolved(env_link)
        if self.inside_env(env_link):
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            context.ensure_dir(path.parent)
            context.manifest.record("file", path)
        write_atomic(path, self.content, self.mode)


@dataclass(frozen=True)
class RegisterKernel(Step):
    """path: the kernel dir; content: its kernel.json. Records the kernel dir (tree)."""

    kind: ClassVar[str] = "kernel"

    def is_current(self, context: Context) -> bool:
        try:
            spec = json.loads((Path(self.path) / "kernel.json").read_text())
        except (OSError, ValueError):
            return False
        return bool(spec == json.loads(self.content))

    def preflight(self, owned: Manifest, env_link: Path) -> list[Path]:
        return [claim(Path(self.path), owned, env_link)]

    def apply(self, context: Context) -> None:
        kernel_dir = Path(self.path)
        context.ensure_dir(kernel_dir.parent)
        context.manifest.record("tree", kernel_dir)
        temporary = kernel_dir.with_name(f".{kernel_dir.name}.daskhpc-tmp")
        context.manifest.record("tree", temporary)
        shutil.rmtree(temporary, ignore_errors=True)
        # The template's other files (the logo) as they are, kernel.json filled in.
        shutil.copytree(context.options.repo.joinpath(*generated.KERNEL_TEMPLATE), temporary)
        (temporary / "kernel.json").write_text(self.content)
        if context.options.system:
            make_shared_read_only(temporary)
        shutil.rmtree(kernel_dir, ignore_errors=True)  # ours (checked before starting)
        os.rename(temporary, kernel_dir)
        context.manifest.forget("tree", temporary)


@dataclass(frozen=True)
class AddRcLine(Step):
    """content: the line added to the shell rc file at path. Records the line (rc-line) and,
    when setup made the file, the file (file-if-empty)."""

    kind: ClassVar[str] = "rc-line"

    def is_current(self, context: Context) -> bool:
        try:
            return self.content in Path(self.path).read_text().splitlines()
        except OSError:
            return False

    def preflight(self, owned: Manifest, env_link: Path) -> list[Path]:
        return [Path(self.path)]  # the user's own file: we add a line, never replace it

    def apply(self, context: Context) -> None:
        path = Path(self.path)
        existing: Optional[str] = path.read_text() if path.exists() else None
        context.manifest.record("rc-line", path, self.content)
        if existing is None:
            context.manifest.record("file-if-empty", path)
        separator = "" if not existing or existing.endswith("\n") else "\n"
        with path.open("a") as stream:
            stream.write(f"{separator}{self.content}\n")
