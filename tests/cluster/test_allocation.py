"""Allocation detection on real-format samples of each batch system's environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from daskhpc.cluster.batch import detect
from daskhpc.cluster.batch.hosts import local_cores
from daskhpc.errors import DaskhpcError


def hosts(allocation):
    return [node.host for node in allocation.nodes]


@pytest.mark.parametrize(
    ("nodelist", "expected"),
    [
        ("node[01-03,07],gpu[1-2]", ["node01", "node02", "node03", "node07", "gpu1", "gpu2"]),
        ("node[1-3]", ["node1", "node2", "node3"]),
        ("c1-r[1-2]n[5,7]", ["c1-r1n5", "c1-r1n7", "c1-r2n5", "c1-r2n7"]),
        ("single", ["single"]),
        ("a,b.example.org", ["a", "b.example.org"]),
    ],
)
def test_slurm_nodelist_forms(nodelist, expected):
    allocation = detect({"SLURM_JOB_NODELIST": nodelist, "SLURM_JOB_ID": "42"})
    assert allocation.kind == "slurm"
    assert allocation.job_id == "42"
    assert hosts(allocation) == expected


def test_slurm_cpus_and_memory_per_node():
    allocation = detect({
        "SLURM_JOB_NODELIST": "n[1-4]",
        "SLURM_JOB_CPUS_PER_NODE": "8(x3),4",
        "SLURM_MEM_PER_NODE": "16000",
        "SLURM_JOB_END_TIME": "1900000000",
    })
    assert [node.cores for node in allocation.nodes] == [8, 8, 8, 4]
    assert {node.memory_bytes for node in allocation.nodes} == {16000 * 2**20}
    assert allocation.end_time == 1900000000


def test_slurm_memory_per_cpu():
    allocation = detect({"SLURM_JOB_NODELIST": "n[1-2]", "SLURM_JOB_CPUS_PER_NODE": "2,4",
                         "SLURM_MEM_PER_CPU": "1000"})
    assert [node.memory_bytes for node in allocation.nodes] == [2000 * 2**20, 4000 * 2**20]


def test_slurm_mem_zero_means_whole_node():
    allocation = detect({"SLURM_JOB_NODELIST": "n1", "SLURM_MEM_PER_NODE": "0"})
    assert allocation.nodes[0].memory_bytes is None


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SLURM_JOB_NODELIST": "node[01-"}, "not a valid host list"),
        ({"SLURM_JOB_NODELIST": "node[3-1]"}, "not a valid host list"),
        ({"SLURM_JOB_NODELIST": "n[1-2]", "SLURM_JOB_CPUS_PER_NODE": "2(x3)"}, "gives 3 nodes"),
        ({"SLURM_JOB_NODELIST": "n[1-2]", "SLURM_JOB_CPUS_PER_NODE": "two"}, "Slurm's format"),
        ({"SLURM_JOB_NODELIST": "n1", "SLURM_MEM_PER_NODE": "lots"}, "SLURM_MEM_PER_NODE"),
    ],
)
def test_slurm_malformed(environ, message):
    with pytest.raises(DaskhpcError, match=message):
        detect(environ)


def test_pbs_nodefile_repeated_lines_are_slots(tmp_path: Path):
    nodefile = tmp_path / "aggregate"
    nodefile.write_text("r1i0n3.ib0.cluster\n" * 4 + "r1i0n4.ib0.cluster\n" * 4 + "r1i0n5\n")
    allocation = detect({"PBS_NODEFILE": str(nodefile), "PBS_JOBID": "1234.pbs01"})
    assert allocation.kind == "pbs"
    assert hosts(allocation) == ["r1i0n3.ib0.cluster", "r1i0n4.ib0.cluster", "r1i0n5"]
    assert [node.slots for node in allocation.nodes] == [4, 4, 1]


def test_lsf_hostfile_and_hosts_variable(tmp_path: Path):
    hostfile = tmp_path / "1234.hostfile"
    hostfile.write_text("batch1\nbatch1\nbatch2\n")
    assert [n.slots for n in detect({"LSB_DJOB_HOSTFILE": str(hostfile)}).nodes] == [2, 1]
    allocation = detect({"LSB_HOSTS": "hostA hostA hostB hostC hostC hostC", "LSB_JOBID": "7"})
    assert allocation.kind == "lsf"
    assert [(n.host, n.slots) for n in allocation.nodes] == [("hostA", 2), ("hostB", 1),
                                                              ("hostC", 3)]


def test_sge_pe_hostfile(tmp_path: Path):
    pe = tmp_path / "pe_hostfile"
    pe.write_text("compute-0-1.local 4 all.q@compute-0-1.local UNDEFINED\n"
                  "compute-0-2.local 2 all.q@compute-0-2.local 0,1\n")
    allocation = detect({"PE_HOSTFILE": str(pe), "JOB_ID": "99"})
    assert allocation.kind == "sge"
    assert [(n.host, n.cores) for n in allocation.nodes] == [("compute-0-1.local", 4),
                                                              ("compute-0-2.local", 2)]


def test_sge_malformed(tmp_path: Path):
    pe = tmp_path / "pe_hostfile"
    pe.write_text("compute-0-1.local four all.q UNDEFINED\n")
    with pytest.raises(DaskhpcError, match=r"PE_HOSTFILE slots of compute-0-1\.local"):
        detect({"PE_HOSTFILE": str(pe)})


def test_hostfile_formats(tmp_path: Path):
    hostfile = tmp_path / "hosts"
    hostfile.write_text("# our nodes\nnodeA slots=4\nnodeB:2\n\nnodeC   # default slots\n")
    allocation = detect({"SLURM_JOB_NODELIST": "ignored[1-2]"}, hostfile=str(hostfile))
    assert allocation.kind == "hostfile"
    assert [(n.host, n.slots) for n in allocation.nodes] == [("nodeA", 4), ("nodeB", 2),
                                                              ("nodeC", local_cores())]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nodeA slots=lots\n", "line 1 slots"),
        ("nodeA extra words\n", "line 1"),
        ("# nothing\n", "lists no hosts"),
        ("no$de\n", "line 1"),
    ],
)
def test_hostfile_malformed(tmp_path: Path, text, message):
    hostfile = tmp_path / "hosts"
    hostfile.write_text(text)
    with pytest.raises(DaskhpcError, match=message):
        detect({}, hostfile=str(hostfile))


def test_missing_files_are_named(tmp_path: Path):
    with pytest.raises(DaskhpcError, match=r"cannot read .*missing"):
        detect({}, hostfile=str(tmp_path / "missing"))
    with pytest.raises(DaskhpcError, match="PBS_NODEFILE: cannot read"):
        detect({"PBS_NODEFILE": str(tmp_path / "gone")})


def test_hosts_option_takes_host_lists():
    assert hosts(detect({}, hosts="a,b[1-2]")) == ["a", "b1", "b2"]
    with pytest.raises(DaskhpcError, match="--hosts"):
        detect({}, hosts="a,,[")


def test_no_allocation_is_this_machine():
    allocation = detect({})
    assert allocation.kind == "none"
    assert len(allocation.nodes) == 1
    assert allocation.nodes[0].cores == local_cores()
