"""The notebooks as stored, and the taxi-data generator: fast checks, no kernel or cluster."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from notebooks import EXAMPLES, set_parameters

sys.path.insert(0, str(EXAMPLES))

import taxi_data

NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_all_seven_notebooks_are_there():
    assert [path.stem for path in NOTEBOOKS] == [
        "01-getting-started", "02-kmeans", "03-pca", "04-dataframe-etl", "05-training",
        "06-dask-image", "07-from-python",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_stripped_and_parameterised(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "dask"  # the kernel setup-dask.sh registers
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    tagged = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert 'scheduler_file = "~/dask-scheduler.json"' in tagged[0].source
    # what the tests read back through the kernel
    assert any(re.search(r"^results = \{", cell.source, re.MULTILINE) for cell in code)


def test_set_parameters_rewrites_only_known_names():
    notebook = nbformat.read(EXAMPLES / "04-dataframe-etl.ipynb", as_version=4)
    set_parameters(notebook, {"rows": 1_000, "data_dir": "/tmp/x"})
    source = next(c.source for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    assert "\nrows = 1000\n" in source and "\ndata_dir = '/tmp/x'\n" in source
    with pytest.raises(KeyError):
        set_parameters(notebook, {"no_such_parameter": 1})


def test_taxi_partition_has_the_tlc_columns_and_dtypes():
    trips = taxi_data.generate_partition(5_000, seed=1, partition=0)
    assert {name: str(dtype) for name, dtype in trips.dtypes.items()} == taxi_data.SCHEMA
    assert trips.tpep_pickup_datetime.dt.month.eq(1).all()
    assert trips.PULocationID.between(1, taxi_data.TAXI_ZONES).all()
    cash = trips.payment_type == taxi_data.CASH
    assert trips.tip_amount[cash].eq(0).all() and trips.tip_amount[~cash].gt(0).any()


def test_taxi_partitions_are_reproducible_and_differ():
    first = taxi_data.generate_partition(1_000, seed=1, partition=0)
    pd.testing.assert_frame_equal(first, taxi_data.generate_partition(1_000, seed=1, partition=0))
    assert not first.equals(taxi_data.generate_partition(1_000, seed=1, partition=1))


def test_taxi_trips_splits_rows_over_partitions():
    trips = taxi_data.trips(rows=10, partitions=3)
    assert trips.npartitions == 3
    assert trips.map_partitions(len).compute(scheduler="sync").tolist() == [4, 3, 3]
    with pytest.raises(ValueError, match="rows per partition"):
        taxi_data.trips(rows=2, partitions=3)
