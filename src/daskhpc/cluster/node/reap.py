"""`python -m daskhpc.cluster.node.reap RECORDS_FILE`: end what is recorded and still runs here.

Run on a node by stop-dask-cluster (through the cluster's launcher) when that node's agent did
not verify its own end. Prints one JSON line: how many recorded processes were still alive.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from daskhpc.cluster.node.processes import read_records, reap


def main() -> int:
    records, _ = read_records(Path(sys.argv[1]))
    survivors = reap(records)
    print(json.dumps({"reaped": [item.pid for item in survivors]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
