"""When does the batch job we run in end? Asked of the batch system itself.

Slurm: `SLURM_JOB_END_TIME` (set by Slurm 23.02 and later), else `squeue`'s time left for the
job. PBS (OpenPBS, PBS Pro, Torque): the job's walltime limit minus the walltime used, from
`qstat -f`. LSF: `bjobs -o time_left`, when it is a run limit ("L"; an "E" estimate kills
nothing). SGE: the job's start from `qstat` plus its `h_rt` limit from `qstat -j`. The answer is
epoch seconds, or None when the job has no limit, the batch system does not answer, or we are in
no job: workers then simply get no lifetime. Standard library only.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import time
from typing import TYPE_CHECKING, Callable, Mapping, Optional, Sequence

if TYPE_CHECKING:
    from daskhpc.cluster.allocation import Allocation

Runner = Callable[[Sequence[str]], Optional[str]]

_SLURM_NO_LIMIT = {"UNLIMITED", "NOT_SET", "INVALID", "NONE", "N/A", ""}


def _run(argv: Sequence[str]) -> Optional[str]:
    """stdout of a batch system's query command, or None when it is missing or fails."""
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=15,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def parse_slurm_duration(text: str) -> Optional[float]:
    """Seconds in Slurm's time format: [days-]hours:minutes:seconds, minutes:seconds, minutes.

    None for Slurm's words for "no limit" (UNLIMITED, NOT_SET, ...).
    """
    text = text.strip()
    if text.upper() in _SLURM_NO_LIMIT:
        return None
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not match:
        raise ValueError(f"not a Slurm duration: {text!r}")
    days, first, second, third = match.groups()
    if days is not None:  # days-hours[:minutes[:seconds]]
        hours, minutes, seconds = int(first), int(second or 0), int(third or 0)
    elif third is not None:  # hours:minutes:seconds
        hours, minutes, seconds = int(first), int(second), int(third)
    elif second is not None:  # minutes:seconds
        hours, minutes, seconds = 0, int(first), int(second)
    else:  # minutes
        hours, minutes, seconds = 0, int(first), 0
    return float(((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds)


def parse_hms(text: str) -> float:
    """Seconds in PBS's walltime format: [[hours:]minutes:]seconds."""
    parts = [float(part) for part in text.strip().split(":")]
    if not 1 <= len(parts) <= 3:
        raise ValueError(f"not a PBS walltime: {text!r}")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def slurm_end_time(environ: Mapping[str, str], run: Runner = _run,
                   now: Callable[[], float] = time.time) -> Optional[float]:
    end = environ.get("SLURM_JOB_END_TIME", "").strip()
    if end.isdigit() and int(end) > 0:
        return float(end)
    job = environ.get("SLURM_JOB_ID", "").strip()
    if not job:
        return None
    left = run(["squeue", "--noheader", "--jobs", job, "--format", "%L"])
    if left is None:
        return None
    try:
        seconds = parse_slurm_duration(left)
    except ValueError:
        return None
    return None if seconds is None else now() + seconds


def pbs_end_time(environ: Mapping[str, str], run: Runner = _run,
                 now: Callable[[], float] = time.time) -> Optional[float]:
    job = environ.get("PBS_JOBID", "").strip()
    if not job:
        return None
    report = run(["qstat", "-f", job])
    if report is None:
        return None
    fields = dict(re.findall(r"^\s*([\w.]+)\s*=\s*(.*?)\s*$", report, flags=re.MULTILINE))
    limit = fields.get("Resource_List.walltime")
    if not limit:
        return None
    try:
        left = parse_hms(limit) - parse_hms(fields.get("resources_used.walltime", "0"))
    except ValueError:
        return None
    return now() + max(left, 0.0)


def lsf_end_time(environ: Mapping[str, str], run: Runner = _run,
                 now: Callable[[], float] = time.time) -> Optional[float]:
    job = environ.get("LSB_JOBID", "").strip()
    if not job:
        return None
    report = run(["bjobs", "-noheader", "-o", "time_left", job])
    # hours:minutes[:seconds] (seconds with LSB_HMS_TIME_FORMAT) and L for a run limit
    match = re.fullmatch(r"(\d+):(\d+)(?::(\d+))?\s*L", (report or "").strip())
    if match is None:
        return None
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return now() + (hours * 60 + minutes) * 60 + seconds


def sge_end_time(environ: Mapping[str, str], run: Runner = _run) -> Optional[float]:
    job = environ.get("JOB_ID", "").strip()
    if not job or not environ.get("SGE_ROOT"):
        return None
    details = run(["qstat", "-j", job])
    limit = re.search(r"^hard resource_list:.*?\bh_rt=([\d:]+)", details or "", flags=re.MULTILINE)
    listing = run(["qstat", "-s", "r"])
    # "job-ID prior name user state submit/start at ...": a running job's line has its start
    started = re.search(rf"^\s*{re.escape(job)}\s+\S+\s+\S+\s+\S+\s+\S+\s+"
                        r"(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)", listing or "", flags=re.MULTILINE)
    if limit is None or started is None:
        return None
    try:
        start = time.mktime(time.strptime(started.group(1), "%m/%d/%Y %H:%M:%S"))
        return start + parse_hms(limit.group(1))
    except ValueError:
        return None


def job_end_time(environ: Mapping[str, str], run: Runner = _run,
                 now: Callable[[], float] = time.time) -> Optional[float]:
    """Epoch seconds at which the batch job we run in is killed, or None (see module doc)."""
    if environ.get("SLURM_JOB_ID"):
        return slurm_end_time(environ, run, now)
    if environ.get("PBS_JOBID"):
        return pbs_end_time(environ, run, now)
    if environ.get("LSB_JOBID"):
        return lsf_end_time(environ, run, now)
    if environ.get("JOB_ID"):
        return sge_end_time(environ, run)
    return None


def with_job_end(allocation: Allocation, environ: Mapping[str, str]) -> Allocation:
    """The allocation with the end of the job we run in, if it had none (any node source: a
    --hostfile inside a job still ends with the job)."""
    if allocation.end_time is not None:
        return allocation
    end = job_end_time(environ)
    return allocation if end is None else dataclasses.replace(allocation, end_time=end)
