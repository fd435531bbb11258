"""What the container tests share: an installed machine seen by root and by a plain user."""

from __future__ import annotations

import testinfra
from testbed.container import Container

USER = "alice"  # the plain user the recipe creates in the container


class InstalledMachine:
    """The container, testinfra hosts for root and for USER, its state before, setup's output."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.host = testinfra.get_host(container.hostspec())
        self.user_host = testinfra.get_host(container.hostspec(USER))
        self.before: dict[str, str] = {}
        self.setup_output = ""

    def as_user(self, script: str, timeout: float = 600) -> str:
        return self.container.check(script, user=USER, timeout=timeout)
