"""The install manifest: a versioned JSON record of everything setup created, so remove can
take away exactly that and nothing else.

The file is rewritten atomically (temporary file + rename) after every change, so a killed
installer leaves a manifest that lists at least everything that exists on disk. Items are
recorded *before* a long step creates them; removal tolerates items that never appeared.
Standard library only (the bootstrap Python reads it).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from daskhpc.errors import DaskhpcError
from daskhpc.files import write_atomic

FORMAT_VERSION = 1

# What an item is decides how remove takes it away (Item.undo). Each install step records the
# items it creates (install/steps/), so undoing its items undoes the step, from the manifest
# alone: remove never needs the options or the code that planned the install.
#   dir       a directory setup created: removed only when empty (others' files stay)
#   file      a file setup wrote (wrapper, modulefile, ...)
#   tree      a directory tree that is wholly ours (kernel dir, uv tool, cache)
#   env-build one build of the environment (a complete or half-built prefix)
#   env-link  the symlink that points at the current build: the path users and wrappers see
#   rc-line   one line setup appended to a shell rc file
#   file-if-empty  a file setup created to hold rc-lines: removed once nothing else is in it
KINDS = ("dir", "file", "tree", "env-build", "env-link", "rc-line", "file-if-empty")


@dataclass(frozen=True)
class Item:
    kind: str
    path: str
    line: str = ""  # rc-line only

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown manifest item kind {self.kind!r}")

    def undo(self) -> None:
        """Take away what this item records; nothing when it is gone already."""
        path = Path(self.path)
        if self.kind in ("file", "env-link"):
            path.unlink(missing_ok=True)
        elif self.kind in ("tree", "env-build"):
            if path.is_symlink():
                path.unlink()
            else:
                shutil.rmtree(path, ignore_errors=True)
        elif self.kind == "rc-line":
            self._remove_line(path)
        elif self.kind == "file-if-empty":
            if path.exists() and not path.read_text().strip():
                path.unlink()
        elif self.kind == "dir":
            try:
                path.rmdir()  # only when empty: files others put there stay
            except FileNotFoundError:
                pass
            except OSError:
                print(f"kept {path}: it holds files daskhpc did not put there")

    def _remove_line(self, path: Path) -> None:
        try:
            lines = path.read_text().splitlines(keepends=True)
        except FileNotFoundError:
            return
        remaining = [line for line in lines if line.rstrip("\n") != self.line]
        if len(remaining) != len(lines):
            path.write_text("".join(remaining))


@dataclass
class EnvRecord:
    """Which build the env link points at and what it was built from (for no-op re-runs)."""

    link: str
    build: str
    backend: str
    inputs_sha256: str
    package_sha256: str


@dataclass
class Manifest:
    path: Path
    system: bool = False
    daskhpc_version: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    env: Optional[EnvRecord] = None
    items: list[Item] = field(default_factory=list)

    # -- recording -----------------------------------------------------------------------

    def has(self, kind: str, path: Path | str) -> bool:
        return any(item.kind == kind and item.path == str(path) for item in self.items)

    def owns(self, path: Path | str) -> bool:
        return any(item.path == str(path) for item in self.items)

    def record(self, kind: str, path: Path | str, line: str = "") -> None:
        item = Item(kind, str(path), line)
        if item not in self.items:
            self.items.append(item)
            self.save()

    def forget(self, kind: str, path: Path | str) -> None:
        self.items = [i for i in self.items if not (i.kind == kind and i.path == str(path))]
        self.save()

    def set_env(self, env: Optional[EnvRecord]) -> None:
        self.env = env
        self.save()

    # -- storage -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "daskhpc_version": self.daskhpc_version,
            "system": self.system,
            "settings": self.settings,
            "env": asdict(self.env) if self.env else None,
            "items": [asdict(item) for item in self.items],
        }

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(self.to_json(), indent=2) + "\n", 0o644, sync=True)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


def load(path: Path) -> Optional[Manifest]:
    """The manifest at path, None when there is none; a clear error when it is unreadable."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise DaskhpcError(
            f"cannot read the install manifest {path} ({error}); fix or delete it by hand"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        raise DaskhpcError(
            f"{path} is not a daskhpc manifest of format {FORMAT_VERSION}; "
            "use the daskhpc version that wrote it to remove that install"
        )
    env = data.get("env")
    return Manifest(
        path=path,
        system=bool(data.get("system")),
        daskhpc_version=str(data.get("daskhpc_version", "")),
        settings=dict(data.get("settings") or {}),
        env=EnvRecord(**env) if env else None,
        items=[Item(**item) for item in data.get("items", [])],
    )
