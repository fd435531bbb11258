"""Byte counts in Dask's units, read and written one way. Standard library only.

Not dask.utils.parse_bytes: importing dask costs the start command 0.2 s on the path every
worker waits on.
"""

from __future__ import annotations

import re
from typing import Optional

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?(?:e\d+)?)\s*([a-z]*)\s*$")
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def parse_bytes(text: str) -> Optional[int]:
    """"4GiB", "500MB", "1e9" -> bytes; None when it is not such a size (or under 1 byte)."""
    match = _SIZE.match(text.lower())
    value = float(match.group(1)) * _UNITS.get(match.group(2), -1) if match else -1
    return int(value) if value >= 1 else None


def format_bytes(count: float) -> str:
    """In GiB, two decimals ("64.00 GiB", "0.29 GiB"): node and worker memory, one unit to
    compare at a glance."""
    return f"{count / 2**30:.2f} GiB"
