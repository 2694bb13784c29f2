"""Where a run stands, read from its directory alone: the one rule `ner-report`'s table and
`ner-report --compare` share.

    finished     result.json (the run's summary; ner/run/rundir.py writes it last)
    interrupted  error.json with status "interrupted" (a signal, after a checkpoint)
    failed       error.json (an error after the run was accepted)
    broken       a result.json or error.json that is not complete JSON (files are replaced
                 atomically, so one that cannot be parsed is not being written)
    stopped      its newest attempt ended with end.json status "stopped": cut short on purpose
                 (trainer.stop_after_steps), not running and not finished
    killed       its lock names a process that is no longer running (kill -9, a lost node)
    running      none of these

Standard library only (and the lock's reader), so that light tools can use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ner.atomic import read_json
from ner.run import layout
from ner.run.lock import LOCK_NAME, lock_is_stale


def run_status(run_dir: Path, result: Any, error: Any) -> tuple[str, str]:
    """(status, why) of the run in `run_dir`, given its result.json and error.json as
    ner.atomic.read_json read them (None: missing or not complete JSON); `why` is "" for a
    finished or running run."""
    broken = [run_dir / n for n, r in (("result.json", result), ("error.json", error)) if r is None]
    broken = [path for path in broken if path.is_file()]
    if broken:
        return "broken", f"broken {broken[0].name}: {broken[0]} is not complete JSON"
    if isinstance(result, dict):
        return "finished", ""
    if isinstance(error, dict) and error.get("status") == "interrupted":
        return "interrupted", str(error.get("message", ""))
    if isinstance(error, dict):
        return "failed", f"{error.get('type', 'error')}: {error.get('message', '')}"
    attempts = layout.attempts(run_dir)
    end = read_json(attempts[-1] / "end.json") if attempts else None
    if isinstance(end, dict) and end.get("status") == "stopped":
        return "stopped", str(end.get("message", "stopped"))
    if lock_is_stale(run_dir / LOCK_NAME):  # False when there is no lock
        return "killed", "its process died without a record (kill -9, a lost node); rerun to resume"
    return "running", ""


def status_of(run_dir: Path) -> tuple[str, str]:
    """`run_status` with the run's files read here."""
    return run_status(
        run_dir, read_json(run_dir / "result.json"), read_json(run_dir / "error.json")
    )


def is_held(run_dir: Path) -> bool:
    """Does a live process hold the run's lock (a run in progress)?"""
    return (run_dir / LOCK_NAME).is_file() and not lock_is_stale(run_dir / LOCK_NAME)
