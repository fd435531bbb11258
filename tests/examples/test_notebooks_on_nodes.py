"""Notebooks against a cluster spread over three simulated nodes (ssh launcher, TLS).

The kernel runs outside the nodes, as on a login node; the workers run on node1..node3 and
share the filesystem with it, like cluster nodes sharing a home. A second user of the same
install starts this cluster, so it does not disturb the local cluster of test_notebooks.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from notebooks import NotebookCluster
from testbed.install import DaskInstall, user_environment
from testbed.nodes import NodeBed

pytestmark = [pytest.mark.notebooks, pytest.mark.ssh_nodes, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def nodes_cluster(
    dask_install: DaskInstall, node_bed: NodeBed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NotebookCluster]:
    home = tmp_path_factory.mktemp("second-user") / "home"
    home.mkdir()
    env = {
        **user_environment(home, [dask_install.bin_dir]),
        "DASKHPC_SSH": node_bed.ssh_command,
    }
    hostfile = home / "hostfile"
    hostfile.write_text("node1\nnode2\nnode3\n")
    node1 = node_bed.nodes[0]
    start = node1.run([str(dask_install.wrapper("start-dask-cluster")), "--hostfile",
                       str(hostfile), "--threads-per-worker", "1"], env=env, timeout=180)
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        address = json.loads((home / "dask-scheduler.json").read_text())["address"]
        yield NotebookCluster(dask_install, env, address, home / "example-data")
    finally:
        stop = node1.run([str(dask_install.wrapper("stop-dask-cluster"))], env=env, timeout=120)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert node_bed.processes(str(dask_install.prefix)) == {
            node.hostname: [] for node in node_bed.nodes
        }


def test_workers_on_every_node(nodes_cluster: NotebookCluster, node_bed: NodeBed):
    results = nodes_cluster.run("01-getting-started", n_tasks=200)
    assert results["scheduler_address"] == nodes_cluster.scheduler_address
    assert results["scheduler_address"].startswith(f"tls://{node_bed.nodes[0].address}:")
    assert results["hosts"] == ["node1", "node2", "node3"]
    assert results["delayed_total"] == results["futures_total"] == results["expected_total"]


def test_parquet_written_and_read_by_workers_on_three_nodes(nodes_cluster: NotebookCluster):
    data_dir = nodes_cluster.data_dir / "etl"
    results = nodes_cluster.run(
        "04-dataframe-etl", rows=60_000, partitions=6, data_dir=str(data_dir)
    )
    assert results["scheduler_address"] == nodes_cluster.scheduler_address
    assert len(list(Path(data_dir, "taxi-parquet").glob("*.parquet"))) == 6
    assert results["rows_raw"] == 60_000
    assert 0.03 < 1 - results["rows_clean"] / results["rows_raw"] < 0.07
    assert results["missing_passenger_counts"] == 0


def test_lightgbm_trains_across_nodes(nodes_cluster: NotebookCluster):
    """LightGBM's workers open their own connections to each other, node to node."""
    results = nodes_cluster.run("05-training", rows=30_000, partitions=3, n_estimators=30)
    assert results["scheduler_address"] == nodes_cluster.scheduler_address
    assert results["rmse_lightgbm"] < 0.7 * results["rmse_constant"]
    assert results["rmse_linear"] < 0.7 * results["rmse_constant"]
