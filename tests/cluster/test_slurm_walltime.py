"""Reading the job's end from the batch system (walltime.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import pytest
from testbed.slurm import SlurmBed

from daskhpc.cluster.batch import job_end_time
from daskhpc.cluster.batch.base import parse_hms
from daskhpc.cluster.batch.slurm import parse_slurm_duration

NOW = 1_000_000.0

# `qstat -f` of a running OpenPBS job, trimmed (real format: 4-space indented "key = value").
QSTAT_F = """Job Id: 4242.pbs01
    Job_Name = STDIN
    job_state = R
    resources_used.cput = 00:00:01
    resources_used.walltime = 00:10:30
    Resource_List.nodect = 3
    Resource_List.walltime = 01:00:00
    Resource_List.select = 3:ncpus=2
"""


@pytest.mark.parametrize(("text", "seconds"), [
    ("59", 59 * 60.0), ("2:30", 150.0), ("1:00:00", 3600.0), ("1-00:00:00", 86400.0),
    ("2-3", (2 * 24 + 3) * 3600.0), ("0:45", 45.0), ("UNLIMITED", None), ("NOT_SET", None),
])
def test_slurm_duration_formats(text: str, seconds: Optional[float]) -> None:
    assert parse_slurm_duration(text) == seconds


def test_pbs_walltime_format() -> None:
    assert parse_hms("01:02:03") == 3723.0
    assert parse_hms("90") == 90.0


def test_slurm_end_time_variable_wins() -> None:
    def no_squeue(argv: Sequence[str]) -> Optional[str]:
        raise AssertionError("squeue must not be asked when SLURM_JOB_END_TIME is set")

    environ = {"SLURM_JOB_ID": "7", "SLURM_JOB_END_TIME": "1000900"}
    assert job_end_time(environ, run=no_squeue) == 1000900.0


def test_pbs_end_is_limit_minus_used() -> None:
    def qstat(argv: Sequence[str]) -> Optional[str]:
        assert list(argv) == ["qstat", "-f", "4242.pbs01"]
        return QSTAT_F

    end = job_end_time({"PBS_JOBID": "4242.pbs01"}, run=qstat, now=lambda: NOW)
    assert end == NOW + 3600 - 630


def test_no_job_no_end() -> None:
    assert job_end_time({}) is None


@pytest.mark.slurm
def test_end_time_from_a_real_slurm_job(slurm_cluster: SlurmBed, repo: Path) -> None:
    code = ("import os, time; from daskhpc.cluster.batch import job_end_time; "
            "print(round(job_end_time(os.environ) - time.time()))")
    result = slurm_cluster.run(["salloc", "-N1", "-t", "5", "python3", "-c", code],
                               env={"PYTHONPATH": str(repo / "src")}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert 280 <= int(result.stdout) <= 300
    unlimited = slurm_cluster.run(["salloc", "-N1", "python3", "-c",
                                   code.replace("round(", "(").replace(" - time.time()", "")],
                                  env={"PYTHONPATH": str(repo / "src")}, timeout=60)
    assert unlimited.stdout.strip() == "None", unlimited.stderr


@pytest.mark.parametrize(("answer", "left"), [
    ("1:05 L", 3900.0),  # hours:minutes, a run limit
    ("01:05:30 L", 3930.0),  # LSB_HMS_TIME_FORMAT=Y
    ("0:30 E", None),  # an estimated run time: nothing kills the job then
    ("-", None),  # no limit
])
def test_lsf_time_left_counts_only_run_limits(answer: str, left: Optional[float]) -> None:
    def bjobs(argv: Sequence[str]) -> Optional[str]:
        assert list(argv) == ["bjobs", "-noheader", "-o", "time_left", "5151"]
        return answer + "\n"

    end = job_end_time({"LSB_JOBID": "5151"}, run=bjobs, now=lambda: NOW)
    assert end == (None if left is None else NOW + left)


QSTAT_J = """\
==============================================================
job_number:                 77
owner:                      alice
hard resource_list:         h_vmem=4G,h_rt=02:00:00
parallel environment:  mpi range: 8
"""

QSTAT_S_R = """\
job-ID  prior   name       user         state submit/start at     queue                slots
--------------------------------------------------------------------------------------------
     76 0.55500 other.sh   alice        r     11/22/2026 03:00:00 all.q@node9              4
     77 0.55500 dask.sh    alice        r     11/22/2026 05:00:00 all.q@node1              8
"""


def test_sge_end_is_start_plus_hard_runtime() -> None:
    answers = {("qstat", "-j", "77"): QSTAT_J, ("qstat", "-s", "r"): QSTAT_S_R}

    def qstat(argv: Sequence[str]) -> Optional[str]:
        return answers[tuple(argv)]

    end = job_end_time({"JOB_ID": "77", "SGE_ROOT": "/opt/sge"}, run=qstat)
    started = time.mktime(time.strptime("11/22/2026 05:00:00", "%m/%d/%Y %H:%M:%S"))
    assert end == started + 2 * 3600
    # JOB_ID alone is not SGE (many tools set it)
    assert job_end_time({"JOB_ID": "77"}, run=qstat) is None
