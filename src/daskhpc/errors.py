"""The one exception type that reaches the user as a single line."""

from __future__ import annotations


class DaskhpcError(Exception):
    """A problem the user can fix: the message says what is wrong and what to do."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
