"""What the published Dask tutorials need beyond Dask, checked in a notebook on a LocalCluster:
`.visualize()` renders, `dask.datasets.make_people` (mimesis) computes, and a CSV is read from
S3 with s3fs: here from a tiny S3 endpoint on 127.0.0.1 (HEAD and ranged GET of one object,
no signatures: anonymous access, as for the public tutorial buckets)."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat

CSV = b"name,amount\nalice,1\nbob,2\ncarol,3\n"
BUCKET_KEY = "/tutorial-data/accounts.csv"

CELLS = [
    "from dask.distributed import Client, LocalCluster\n"
    "cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False,\n"
    "                       dashboard_address=None)\n"
    "client = Client(cluster)",
    # No filename: only the widget or image, shown as the cell's result.
    "import dask.array as da\n"
    "graph = (da.ones((4, 4), chunks=2) + 1).sum()\n"
    "graph.visualize(filename=None)",
    "import dask.datasets\n"
    "people = dask.datasets.make_people(npartitions=2, records_per_partition=5)\n"
    "print('people', people.count().compute())",
    "import dask.dataframe as dd\n"
    "frame = dd.read_csv('s3:/{key}', storage_options={{'anon': True, 'client_kwargs':\n"
    "                    {{'endpoint_url': '{endpoint}'}}}})\n"
    "print('amount', int(frame.amount.sum().compute()))",
    "client.close(); cluster.close()",
]

RUNNER = """
import sys, nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(notebook, kernel_name=sys.argv[2], timeout=180).execute()
nbformat.write(notebook, sys.argv[1])
"""


class _S3Object(http.server.BaseHTTPRequestHandler):
    def _headers(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/csv")
        self.send_header("ETag", '"0123456789abcdef"')
        self.send_header("Last-Modified", "Wed, 02 Dec 2026 12:00:00 GMT")
        self.end_headers()

    def do_HEAD(self) -> None:
        if self.path.split("?")[0] != BUCKET_KEY:
            self._headers(404, b"")
            return
        self._headers(200, CSV)

    def do_GET(self) -> None:
        if self.path.split("?")[0] != BUCKET_KEY:
            self._headers(404, b"")
            return
        body, status = CSV, 200
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes="):
            start, _, end = ranged[len("bytes="):].partition("-")
            body = CSV[int(start):int(end) + 1 if end else None]
            status = 206
        self._headers(status, body)
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def s3_endpoint() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _S3Object)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_tutorial_needs(kernel_name: str, env: dict[str, str], folder: Path) -> list[dict]:
    """Execute the cells on the kernel; return each cell's outputs."""
    with s3_endpoint() as endpoint:
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell(
            cell.format(key=BUCKET_KEY, endpoint=endpoint)) for cell in CELLS]
        path = folder / "tutorial-needs.ipynb"
        nbformat.write(notebook, path)
        result = subprocess.run([sys.executable, "-c", RUNNER, str(path), kernel_name],
                                env={**env, "IPYTHONDIR": str(folder / "ipython"),
                                     "AWS_EC2_METADATA_DISABLED": "true"},
                                capture_output=True, text=True, timeout=400, cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return [list(cell.outputs) for cell in nbformat.read(path, as_version=4).cells]


def check_tutorial_outputs(outputs: list[list[dict]], renderer: str) -> None:
    """renderer: the MIME type the graph comes out as (a widget, or graphviz's image)."""
    shown = outputs[1][0].get("data", {})
    assert renderer in shown, json.dumps(outputs[1])[:2000]
    printed = "".join(o.get("text", "") for cell in outputs for o in cell).split("\n")
    assert "people 10" in printed and "amount 6" in printed
