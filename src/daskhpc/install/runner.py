"""Run the installer's external commands: full output to the log file, a progress line on the
terminal while a long command runs, and one clear error line when it fails."""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Optional, TextIO

from daskhpc.errors import DaskhpcError

PROGRESS_EVERY_SECONDS = 10.0


def child_environment(extra: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The installer's environment minus what would leak the repo's source into the new env
    (the bootstrap sets PYTHONPATH to the repo's src)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    environment["UV_PYTHON_DOWNLOADS"] = "never"  # only the Python asked for, never a download
    if "UV_SYSTEM_CERTS" not in environment:
        # uv trusts only its built-in roots by default; sites (and these test machines) reach
        # PyPI through their own CA, which lives in the system store like it does for pip.
        environment.setdefault("UV_NATIVE_TLS", "1")
    environment.update(extra or {})
    return environment


class Log:
    """The install log: every command and its output. Its path is printed at start and on error."""

    def __init__(self, path: Optional[Path],
                 on_open: Optional[Callable[[Path], None]] = None) -> None:
        self.path = path
        self._on_open = on_open
        self._stream: Optional[TextIO] = None

    def write(self, text: str) -> None:
        """Append to the log, creating it on first use: a run that changes nothing leaves none."""
        if self.path is None:
            return
        if self._stream is None:
            if self._on_open is not None:
                self._on_open(self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = self.path.open("a", buffering=1)
            print(f"      full output: {self.path}", flush=True)
        self._stream.write(text if text.endswith("\n") else text + "\n")

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def run(
        self,
        argv: Sequence[str],
        what: str,
        hint: str,
        environment: Optional[Mapping[str, str]] = None,
    ) -> str:
        """Run argv, return its output; on failure raise one line: what, the hint, the log."""
        self.write(f"$ {shlex.join(argv)}")
        started = time.monotonic()
        try:
            process = subprocess.Popen(
                list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env=dict(environment) if environment is not None else child_environment(),
                stdin=subprocess.DEVNULL,
            )
        except OSError as error:
            raise DaskhpcError(f"{what} failed: cannot run {argv[0]} ({error}); {hint}") from None
        ticker = _Ticker(what, started)
        output: list[str] = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                output.append(line)
                self.write(line)
            code = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            ticker.stop()
        self.write(f"# exit {code} after {time.monotonic() - started:.1f} s")
        if code != 0:
            last = next((line.strip() for line in reversed(output) if line.strip()), "")
            where = f"; full output in {self.path}" if self.path else ""
            raise DaskhpcError(f"{what} failed ({last or f'exit {code}'}); {hint}{where}")
        return "".join(output)


class _Ticker:
    """Says every few seconds that a long command is still going, so nobody thinks it hung."""

    def __init__(self, what: str, started: float) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._tick, args=(what, started), daemon=True)
        self._thread.start()

    def _tick(self, what: str, started: float) -> None:
        while not self._done.wait(PROGRESS_EVERY_SECONDS):
            print(f"      ... {what}: {time.monotonic() - started:.0f} s", flush=True)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
