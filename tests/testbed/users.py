"""Real Unix users for tests that log in (PAM) or need another user on the same node.

Names carry a random part, so beds of several sessions never share a user. Removing a user ends
the processes running under its uid (found in /proc, killed by PID) before `userdel -r`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence


def missing_requirements() -> Optional[str]:
    if os.geteuid() != 0:
        return "real Unix users need root (useradd, chpasswd, runuser)"
    for tool in ("useradd", "userdel", "chpasswd", "runuser"):
        if not any(Path(folder, tool).exists() for folder in ("/usr/sbin", "/usr/bin", "/sbin")):
            return f"real Unix users need {tool!r} (Debian: passwd, util-linux)"
    return None


@dataclass(frozen=True)
class UnixUser:
    name: str
    password: str
    uid: int
    gid: int
    home: Path

    def run(self, argv: Sequence[str], env: Mapping[str, str], timeout: float = 600,
            cwd: Optional[Path] = None) -> subprocess.CompletedProcess[str]:
        """argv as this user with exactly env (runuser keeps no variable of ours)."""
        command = ["runuser", "-u", self.name, "--", "env", "-i",
                   *(f"{key}={value}" for key, value in env.items()), *argv]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              cwd=cwd or self.home, stdin=subprocess.DEVNULL)

    def pids(self) -> list[int]:
        found = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                with contextlib.suppress(OSError):
                    if proc.stat().st_uid == self.uid:
                        found.append(int(proc.name))
        return found


def create_user(label: str) -> UnixUser:
    """A new user `dh<random><label>` with a home in /home and a random password."""
    name = f"dh{secrets.token_hex(3)}{label}"
    password = secrets.token_urlsafe(12)
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True,
                   capture_output=True, text=True)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", check=True,
                   capture_output=True, text=True)
    entry = pwd.getpwnam(name)
    return UnixUser(name, password, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


def remove_user(user: UnixUser) -> None:
    for _ in range(50):
        pids = user.pids()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    subprocess.run(["userdel", "--remove", user.name], capture_output=True, text=True)
