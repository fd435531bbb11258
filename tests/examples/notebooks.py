"""Run an example notebook on a given Jupyter kernel and read back the values it computed.

Parameters are injected the way papermill does it, by rewriting the cell tagged `parameters`;
the values come back through the kernel itself: an extra cell prints the notebook's `results`
dict as JSON once every cell of the notebook has run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from testbed.install import DaskInstall

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# numpy scalars and arrays have tolist(); anything else is reported as text.
_REPORT_RESULTS = (
    "import json\n"
    "print(json.dumps(results, default=lambda o: o.tolist() if hasattr(o, 'tolist') else str(o)))"
)


def set_parameters(notebook: nbformat.NotebookNode, values: dict[str, Any]) -> None:
    """Replace `name = ...` lines of the `parameters` cell; every name must be one of them."""
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    source = cell.source
    for name, value in values.items():
        pattern = re.compile(rf"^{re.escape(name)} = .*$", re.MULTILINE)
        if not pattern.search(source):
            raise KeyError(f"{name} is not a parameter of this notebook")
        source = pattern.sub(f"{name} = {value!r}", source)
    cell.source = source


def run_notebook(
    name: str,
    parameters: dict[str, Any],
    kernel_name: str,
    kernel_dirs: list[str],
    env: dict[str, str],
    timeout: int = 300,
) -> dict[str, Any]:
    """Execute examples/<name>.ipynb (cwd examples/) and return its `results` dict."""
    notebook = nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)
    set_parameters(notebook, parameters)
    notebook.cells.append(nbformat.v4.new_code_cell(_REPORT_RESULTS))
    kernel = KernelManager(
        kernel_name=kernel_name,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=kernel_dirs),
    )
    client = NotebookClient(
        notebook, km=kernel, timeout=timeout, resources={"metadata": {"path": str(EXAMPLES)}}
    )
    client.execute(env=env)
    printed = "".join(
        output.get("text", "")
        for output in notebook.cells[-1].outputs
        if output.output_type == "stream" and output.name == "stdout"
    )
    return json.loads(printed)


@dataclass(frozen=True)
class NotebookCluster:
    """The installed kernel, connected through ~/dask-scheduler.json to a running cluster."""

    install: DaskInstall
    env: dict[str, str]  # the user's: HOME decides which cluster ~/dask-scheduler.json names
    scheduler_address: str
    data_dir: Path

    def run(self, name: str, **parameters: Any) -> dict[str, Any]:
        return run_notebook(
            name,
            parameters,
            kernel_name=self.install.kernel_name,
            kernel_dirs=[str(self.install.kernel_dir.parent)],
            env=self.env,
        )
