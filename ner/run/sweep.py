"""A sweep's jobs beyond their directories: the refused ones, recorded in the sweep directory
since they wrote nothing, and the ones that repeat another job's settings.

A multirun job that is refused before its run is accepted (the directory its number names holds
another run, another process holds it, a config its data cannot satisfy) changes no byte of its
run directory (ner/run/rundir.py), and leaves none when it would have made one. Without a record
elsewhere `ner-report SWEEP` could not know the job existed. So the place that sees the refusal
records it here: a job's end (ner/run/cli.py `job_ended`) for Hydra's own launchers, and the torchrun
launcher (hydra_plugins/ner_launchers/) for its jobs, whose refusal happens in another process.

    <sweep dir>/refused_jobs/<job num>-<digest of its overrides>.json
    {"job": 3, "run_dir": "/abs/multirun/x/3", "overrides": ["optim.lr=1e-3", "seed=3"],
     "reason": "run dir ... was made with another configuration ...", "time": "2024-05-01T12:00:00"}

One file per job and settings, each written atomically (the jobs of a Slurm sweep end at the
same moment, on other nodes): the newest refusal of the same job and settings replaces the
older. The overrides are the job's own, so ner-report reads a refused job's settings from its
record: a sweep launched again into its directory numbers its jobs anew, and a job's number then
says nothing about the settings of the directory of that number.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from ner.atomic import read_json, write_json
from ner.errors import UserError

DIRECTORY = "refused_jobs"


def record_refused(
    sweep_dir: str | Path,
    run_dir: str | Path,
    job: int,
    overrides: Iterable[str],
    reason: BaseException | str,
) -> Path | None:
    """Record that job `job` of the sweep in `sweep_dir` (its run directory `run_dir`, its task
    `overrides`) was refused for `reason`; returns the record's path. Nothing is recorded for a
    run that was accepted and recorded its own end (its error.json holds the same message), nor
    on a rank other than 0 (every rank of a job sees the refusal)."""
    if int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", 0))) != 0:
        return None
    message = str(reason)
    error = read_json(Path(run_dir) / "error.json")
    if isinstance(error, dict) and error.get("message") == message:
        return None
    overrides = [str(o) for o in overrides]
    digest = hashlib.sha256("\n".join(overrides).encode("utf-8")).hexdigest()[:12]
    path = Path(sweep_dir) / DIRECTORY / f"{job}-{digest}.json"
    record = {
        "job": int(job),
        "run_dir": str(Path(run_dir).absolute()),
        "overrides": overrides,
        "reason": " ".join(message.split()),
        "time": dt.datetime.now().isoformat(timespec="seconds"),
    }
    try:
        write_json(path, record, "record of a refused job")
    except (OSError, UserError) as e:  # a full disk: the refusal itself was printed already
        print(f"warning: could not record refused job {job}: {e}", file=sys.stderr, flush=True)
        return None
    return path


def refused_jobs(sweep_dir: Path) -> list[dict]:
    """The records of the sweep's refused jobs, oldest first; a record that cannot be read is
    one with its path as the reason, so that it is seen rather than skipped."""
    directory = sweep_dir / DIRECTORY
    records = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        record = read_json(path)
        if not (isinstance(record, dict) and isinstance(record.get("overrides"), list)):
            job = path.stem.split("-")[0]
            record = {"job": job, "overrides": [], "reason": f"{path} is not a complete record"}
        records.append(record)
    return sorted(records, key=lambda r: (str(r.get("time", "")), str(r.get("job"))))


def repeats(jobs: Sequence[tuple[Path, dict[str, str]]]) -> dict[Path, Path]:
    """The jobs of a sweep that repeat an earlier job's settings (its overrides, read from the
    job): {repeat: the first job with those settings}. A sweep launched again into its
    directory numbers its jobs anew, so one setting can run in two directories: one replicate,
    twice. Only a sweep's own jobs (siblings) count; the earlier job is the first in path order."""
    first: dict[tuple, Path] = {}
    found = {}
    for job, overrides in sorted(jobs, key=lambda j: job_order(j[0])):
        settings = (job.parent, tuple(sorted(overrides.items())))
        if settings in first:
            found[job] = first[settings]
        else:
            first[settings] = job
    return found


def job_order(job: Path) -> tuple:
    """Path order, with a sweep's job numbers in numeric order (2 before 10)."""
    name = job.name
    return (job.parent, not name.isdigit(), int(name) if name.isdigit() else 0, name)
