"""PBS, LSF and SGE allocation files, in the formats those batch systems write, drive the ssh
launcher over the simulated nodes (no PBS/LSF/SGE daemons exist in Debian: the files are what
start-dask-cluster reads inside such a job)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cluster_helpers import User

pytestmark = pytest.mark.ssh_nodes


def pbs(home: Path) -> dict[str, str]:
    # $PBS_NODEFILE: one line per slot (ncpus), nodes in order.
    path = home / "pbs_nodefile"
    path.write_text("node1\nnode1\nnode2\nnode2\nnode3\nnode3\n")
    return {"PBS_NODEFILE": str(path), "PBS_JOBID": "4242.pbs01", "PBS_O_WORKDIR": str(home)}


def lsf(home: Path) -> dict[str, str]:
    # $LSB_DJOB_HOSTFILE: one line per slot; $LSB_HOSTS says the same on one line.
    path = home / "lsf_hostfile"
    path.write_text("node1\nnode1\nnode2\nnode2\nnode3\nnode3\n")
    return {"LSB_DJOB_HOSTFILE": str(path), "LSB_HOSTS": "node1 node1 node2 node2 node3 node3",
            "LSB_JOBID": "4243"}


def sge(home: Path) -> dict[str, str]:
    # $PE_HOSTFILE: host, slots, queue@host, processor range.
    path = home / "pe_hostfile"
    path.write_text("node1 2 all.q@node1 UNDEFINED\nnode2 2 all.q@node2 UNDEFINED\n"
                    "node3 2 all.q@node3 UNDEFINED\n")
    return {"PE_HOSTFILE": str(path), "JOB_ID": "4244", "NSLOTS": "6"}


@pytest.mark.parametrize("batch_system", [pbs, lsf, sge], ids=["pbs", "lsf", "sge"])
def test_allocation_file_drives_ssh(node_user: User, batch_system) -> None:
    env = batch_system(node_user.home)
    result = node_user.dask("start", "--threads-per-worker", "1", env=env)
    assert result.returncode == 0, result.stderr
    kind = batch_system.__name__
    assert f"launcher ssh ({kind} allocation of 3 node(s))" in result.stderr
    spec = node_user.latest_spec()
    assert [(node["host"], node["threads_per_worker"]) for node in spec["nodes"]] == [
        ("node1", 1), ("node2", 1), ("node3", 1)]
    assert node_user.compute(spec)["hostnames"] == ["node1", "node2", "node3"]
    assert node_user.dask("stop").returncode == 0
    assert node_user.leftovers() == {}
