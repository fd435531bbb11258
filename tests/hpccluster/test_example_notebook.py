"""examples/07-from-python.ipynb, the example that starts its cluster with HPCCluster, run whole
on the installed kernel inside node1 of the simulated allocation."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from hpc_user import PythonUser

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from notebooks import EXAMPLES, set_parameters

pytestmark = [pytest.mark.notebooks, pytest.mark.ssh_nodes, pytest.mark.timeout(600)]


def test_from_python_notebook(python_user: PythonUser):
    user = python_user
    notebook = nbformat.read(EXAMPLES / "07-from-python.ipynb", as_version=4)
    set_parameters(notebook, {"hostfile": str(user.hostfile), "workers_per_node": 1,
                              "n_tasks": 300})
    with user.kernel() as kernel:
        for cell in notebook.cells:
            if cell.cell_type == "code":
                kernel.run(cell.source)
                if cell.source.startswith("results = {"):
                    results = kernel.value("import json; print(json.dumps(results))")
        assert user.status() == [] and user.leftovers(kernel.pid) == {}
    assert results["hosts"] == ["node1", "node2", "node3"] and results["allocation"] == 3
    assert results["total"] == results["expected_total"]
    assert results["largest_under_load"] > 1
    assert {"Supervisor", "node1 (node)", "node2 (node)", "node3 (node)"} <= set(
        results["log_names"])
    assert results["scheduler_address"].startswith(f"tls://{user.node.address}:")
