"""One format for the lines daskhpc's own processes add to the cluster's logs.

It matches distributed's default log format (millisecond timestamps), so a node's log reads as
one timeline with its workers' lines.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def log(component: str, message: str, stream: TextIO = sys.stderr) -> None:
    now = time.time()
    stamp = f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now))},{int(now % 1 * 1000):03d}"
    print(f"{stamp} - daskhpc.{component} - {message}", file=stream, flush=True)
