"""Environment backends: which tool builds the environment. Each is one file here with a
`Backend` subclass (base.py states the contract); `BACKENDS` lists them once.

`--backend NAME` takes the backend whose names include NAME; a backend that cannot answer
(`conda` with no conda tool found) passes it to one that stands in for it. `auto` asks each in
turn whether it can build here and takes the first that can; the notes of those passed over
say what was tried and what to pass. A re-run keeps the backend it recorded, without asking
the network again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from daskhpc.errors import DaskhpcError
from daskhpc.install.backends.base import Backend, Reason
from daskhpc.install.backends.conda import CondaTool
from daskhpc.install.backends.rattler import Rattler
from daskhpc.install.backends.venv import Venv

# auto's order: the site's conda tool, else conda packages through rattler, else a venv (which
# always answers, so it is last).
BACKENDS: tuple[type[Backend], ...] = (CondaTool, Rattler, Venv)


def backend_choices() -> list[str]:
    """What --backend accepts."""
    return ["auto", *(name for kind in BACKENDS for name in kind.names)]


def named(choice: str) -> Optional[type[Backend]]:
    """The backend that --backend CHOICE names (None for auto)."""
    return next((kind for kind in BACKENDS if choice in kind.names), None)


def select(choice: str, channels: Sequence[str] = (), recorded: Optional[str] = None) -> Backend:
    """The backend for --backend CHOICE. recorded: the backend of the existing install, which
    auto keeps (no network probe on a re-run)."""
    if choice != "auto":
        for kind in BACKENDS:
            if choice in kind.names or choice in kind.stands_in_for:
                chosen = kind.choose(choice)
                if chosen is not None:
                    return chosen
        raise DaskhpcError(f"--backend {choice}: no such backend; choose one of "
                           f"{', '.join(backend_choices())}")
    recorded_kind = named(recorded) if recorded else None
    kept = recorded_kind.keep(recorded) if recorded_kind and recorded else None
    passed_over: list[Reason] = []
    for kind in BACKENDS:
        if kind.probe_asks_network and kept is not None:
            return kept
        found = kind.probe(channels, passed_over)
        if isinstance(found, Backend):
            return found
        passed_over.append(found)
    raise AssertionError("the last backend always answers")
