"""`python -m daskhpc.cluster.node.reap RECORDS_FILE`: clean up after a node's agent, on that node.

Run on a node by stop-dask-cluster (through the cluster's launcher) when that node's agent did
not verify its own end: ends what is recorded and still runs here, removes the node's scratch
directory as the agent recorded it (daskhpc.cluster.node.scratch) and marks the records
finished. Prints one JSON line: which recorded processes were still alive.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from daskhpc.cluster.node import scratch
from daskhpc.cluster.node.processes import (
    ProcessRecord,
    read_records,
    read_scratch,
    reap,
    write_records,
)


def clean_node(record_file: Path) -> list[ProcessRecord]:
    """Reap the node's recorded processes, then remove its scratch, and mark the records
    finished (verified) as the agent would have; returns the records still alive."""
    records, _ = read_records(record_file)
    survivors = reap(records)
    directory = read_scratch(record_file)
    scratch.remove(directory)
    write_records(record_file, records, finished=True, scratch=directory)
    return survivors


def main() -> int:
    survivors = clean_node(Path(sys.argv[1]))
    print(json.dumps({"reaped": [item.pid for item in survivors]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
