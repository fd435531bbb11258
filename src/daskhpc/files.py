"""Replacing files and links atomically: readers see the old version or the new, never half.

Standard library only, and only `os`: the client hook (.pth) and node agents use it.
"""

from __future__ import annotations

import os
from typing import Optional, Union

PathText = Union[str, "os.PathLike[str]"]


def write_atomic(path: PathText, content: Union[str, bytes], mode: int = 0o600,
                 sync: bool = False) -> None:
    """Write content to path with exactly `mode`, replacing it in one rename.

    The temporary name is random and opened exclusively without following links, with the
    final mode from the start (a private file is never briefly readable by others): a file may
    live in a directory others can write, where a planted link must not redirect us.
    `sync` flushes it to disk first (records that must survive a crash).
    """
    path = os.fspath(path)
    data = content.encode() if isinstance(content, str) else content
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.{os.urandom(4).hex()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(temporary, flags, mode & 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)  # exact, whatever the umask
        os.replace(temporary, path)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise


def write_private(path: PathText, content: Union[str, bytes]) -> None:
    """Write a file only its owner may read (0600), atomically."""
    write_atomic(path, content, 0o600)


def swap_link(link: PathText, target: PathText, temporary: Optional[PathText] = None) -> None:
    """Point the symlink `link` at target in one rename (never a missing link). `temporary`
    names the link made first, for callers that record it before it exists."""
    link = os.fspath(link)
    folder, name = os.path.split(link)
    staged = os.fspath(temporary) if temporary is not None else os.path.join(
        folder, f".{name}.{os.urandom(4).hex()}")
    if os.path.lexists(staged):
        os.unlink(staged)
    os.symlink(os.fspath(target), staged)
    os.replace(staged, link)


def make_shared_read_only(root: PathText) -> None:
    """Everyone may read (and run) the tree at root, only its owner may write it (--system)."""
    for folder, directories, files in os.walk(root):
        for name in [*directories, *files]:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode & 0o7777
            executable = os.path.isdir(path) or mode & 0o100
            os.chmod(path, (mode | 0o444 | (0o111 if executable else 0)) & ~0o022)
    os.chmod(root, 0o755)
