"""What the start command and the supervisor say to each other, both sides from here.

Supervisor -> start command: one JSON object per line on the supervisor's stdout, its "event"
one of the names below. Start command -> supervisor: the line ACKNOWLEDGE (or HOLD) on its stdin
once the cluster is ready; its stdin closing before that means "tear it down".
"""

from __future__ import annotations

import json
from typing import Any

PROGRESS = "progress"  # connected, expected
NODE_FAILED = "node-failed"  # host, log (the end of the node session's log)
READY = "ready"  # connected, expected, missing (hosts short of workers)
ERROR = "error"  # message (the cluster could not start; it is being torn down)
ACKNOWLEDGE = "ok"  # the start command took the cluster over; it runs until stopped
HOLD = "hold"  # the cluster lives as long as the process that started it (the Python API)


def encode(event: str, **data: Any) -> str:
    return json.dumps({"event": event, **data}) + "\n"


def decode(line: bytes | str) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(line)
    return message
