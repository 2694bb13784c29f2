"""`ner-report DIR`: one table of every run under a runs or sweep directory, finished or not.

    ner-report multirun/2024-05-01/12-00-00 --csv sweep.csv --markdown sweep.md
    ner-report multirun/2024-05-01/12-00-00 --format latex --all
    ner-report --compare outputs/a outputs/b         # paired tests: ner/tools/compare.py
    ner-report --compare multirun/demo_lr --by optim.lr

What the table shows and how it is written: ner/report/run_tables.py and ner/report/tables.py.

A job is a directory holding `.hydra/` or `attempts/`. Its row: the overridden hyperparameters
(hydra.* excluded; read from the job, never from its number), its status (ner/run/status.py:
finished, failed, interrupted, broken, stopped, killed, running, with the message), the
epochs done, the best epoch by the monitored metric (the loop's rule, ner/metrics.py), the scores
at that epoch and at the last one, the test F1 and the wall time (its attempts' own, not the time
between them). A sweep's job refused before it had a directory is a row too, `refused`, from its
record in the sweep directory (ner/run/sweep.py). Rows are sorted best first; jobs without
metrics come last. Jobs that differ only in a `seed` override are summarised per group: mean and
sample standard deviation of the best and final F1 over the finished jobs, a job that repeats
another's settings (a sweep launched again into its directory) counted once.
Files are read as they are, so the report works while a sweep runs: the run replaces its files
atomically (ner/atomic.py), so one that is there but cannot be parsed is broken, not in progress.
"""

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ner.atomic import read_json
from ner.errors import UserError, exit_on_error
from ner.metrics import best_entry, mode_of
from ner.report.history import eval_entries, eval_sets_in, is_test
from ner.report.run_tables import report, scores
from ner.report.tables import FORMATS
from ner.run import layout
from ner.run.layout import launch_file
from ner.run.status import run_status
from ner.run.sweep import DIRECTORY as SWEEP_RECORDS
from ner.run.sweep import refused_jobs, repeats
from ner.tools import compare


def find_job_dirs(root: Path) -> list[Path]:
    """Every directory under `root` (itself included) holding `.hydra/` or `attempts/` (a run
    started without Hydra, as tests and scripts do), in path order.

    Also a directory holding only error.json: a job the torchrun launcher saw fail before Hydra
    started in it.
    """
    jobs = []
    for dirpath, dirnames, filenames in os.walk(root):
        if ".hydra" in dirnames or "attempts" in dirnames or "error.json" in filenames:
            jobs.append(Path(dirpath))
            dirnames.clear()  # a job's checkpoints and TensorBoard files hold no further jobs
        else:
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(jobs)


def read_overrides(job: Path) -> dict[str, str]:
    """The job's task overrides as {key: value as written}, hydra.* keys excluded.

    From the newest launch's overrides.yaml, else the "overrides" the launcher put in error.json.
    """
    try:
        lines = yaml.safe_load(launch_file(job, "overrides.yaml").read_text())
    except (OSError, yaml.YAMLError):
        error = read_json(job / "error.json")
        lines = error.get("overrides") if isinstance(error, dict) else None
    return parse_overrides(lines)


def parse_overrides(lines: Any) -> dict[str, str]:
    """Hydra's task overrides (a list of `key=value`) as {key: value as written}, hydra.*
    keys excluded."""
    overrides = {}
    for line in lines if isinstance(lines, list) else []:
        key, sep, value = str(line).partition("=")
        key = key.lstrip("~+")  # `+key=v` adds, `++key=v` forces, `~key` deletes: same column
        if key != "hydra" and not key.startswith(("hydra.", "hydra/")):
            overrides[key] = value if sep else "<deleted>"
    return overrides


def _metric(entry: dict | None, prefix: str, name: str) -> float | None:
    """`entry[prefix + name]`, also accepting the bare name (result.json's "final" and "test")."""
    if not isinstance(entry, dict):
        return None
    value = entry.get(prefix + name, entry.get(name))
    return float(value) if isinstance(value, (int, float)) else None


def _time(record: Any, key: str) -> float | None:
    """A record's ISO time `key` as a timestamp, None when absent or unreadable."""
    try:
        return datetime.fromisoformat(record[key]).timestamp()
    except (TypeError, KeyError, ValueError):
        return None


def _wall_time(job: Path, result: Any) -> float | None:
    """result.json's wall time (the loop's, over every attempt), else the sum of the attempts'
    own: each from its start (launch.json) to its end (end.json), or to the newest file written
    before the next attempt started (an attempt killed, or the one running). The time between
    attempts is no run's (a run extended days later, an interrupted one resumed). A run without
    attempts/ (older versions): from run_info.json's start to the newest file in the job."""
    if isinstance(result, dict) and isinstance(result.get("wall_time_s"), (int, float)):
        return float(result["wall_time_s"])
    attempts = layout.attempts(job)
    starts = [_time(read_json(a / "launch.json"), "start_time") for a in attempts]
    if not attempts or None in starts:
        starts = [_time(read_json(job / "run_info.json"), "start_time")]
        attempts = [job]  # as one attempt, without an end
        if starts[0] is None:
            return None
    written = []
    for path in job.rglob("*"):
        try:
            written.append(path.stat().st_mtime)
        except FileNotFoundError:  # a temporary file renamed away while we walk
            continue
    total = 0.0
    for k, (attempt, start) in enumerate(zip(attempts, starts, strict=True)):
        end = _time(read_json(attempt / "end.json"), "end_time")
        if end is None:
            until = starts[k + 1] if k + 1 < len(starts) else float("inf")
            end = max((t for t in written if start <= t < until), default=start)
        total += max(0.0, end - start)
    return total


def job_mode(job: Path, result: Any, monitor: str) -> str:
    """How `monitor` improves for this job: as the run recorded it (result.json, else its newest
    config) when it monitored that key, else the metric's own direction."""
    recorded = result if isinstance(result, dict) else None
    if recorded is None:
        # No readable config (a job that failed before its launch was recorded): no record.
        with contextlib.suppress(OSError, yaml.YAMLError, TypeError, KeyError):
            recorded = yaml.safe_load(launch_file(job, "config.yaml").read_text())["trainer"]
    if isinstance(recorded, dict) and recorded.get("monitor") == monitor:
        return str(recorded.get("monitor_mode", mode_of(monitor)))
    return mode_of(monitor)


def job_row(job: Path, root: Path, monitor: str) -> dict[str, Any]:
    """One table row: job, overrides (under "overrides"), status, metrics and wall time."""
    result, error = read_json(job / "result.json"), read_json(job / "error.json")
    history = read_json(job / "log_history.json")
    epochs_known = isinstance(history, list)  # else missing or being rewritten
    history = [e for e in history if isinstance(e, dict)] if epochs_known else []
    evals = eval_entries(history)
    tests = [e for e in history if is_test(e)]

    row: dict[str, Any] = {"job": str(job.relative_to(root)), "overrides": read_overrides(job)}
    row["status"], row["error"] = run_status(job, result, error)
    row["epochs"] = len(evals) if epochs_known else None

    best = best_entry(evals, monitor, job_mode(job, result, monitor))  # the loop's rule
    final = evals[-1] if evals else None
    row["monitor_best"] = float(best[monitor]) if best else None
    row["best_epoch"] = best.get("epoch") if best else None
    if not evals and isinstance(result, dict):  # no history to read: trust the summary
        row["monitor_best"] = _metric(result, "", "best")
        row["best_epoch"] = result.get("best_epoch")
        final = result.get("final")
    for name in scores():
        row[f"best_{name}"] = _metric(best, "eval_", name)
        row[f"final_{name}"] = _metric(final, "eval_", name)
    # Several evaluation sets: each set's F1 at the best epoch (best_f1 is their mean).
    row["sets"] = {s: _metric(best, f"eval_{s}_", "f1") for s in eval_sets_in(best or {})}
    test = tests[-1] if tests else (result.get("test") if isinstance(result, dict) else None)
    row["test_f1"] = _metric(test, "test_", "f1")
    row["wall_time_s"] = _wall_time(job, result)
    return row


def refused_rows(root: Path, jobs: Sequence[Path], rows: Sequence[dict]) -> list[dict[str, Any]]:
    """A row per job refused before it had a run directory (ner/run/sweep.py: its record in
    the sweep directory, with the job's own overrides), in every sweep under `root`; the newest
    refusal of each setting, and none for a setting a job directory of the sweep holds (run
    before, or after)."""
    sweeps = sorted({root, *(job.parent for job in jobs if job != root)})
    present = {(r["sweep"], tuple(sorted(r["overrides"].items()))) for r in rows}
    found: dict[tuple, dict[str, Any]] = {}
    for sweep in sweeps:
        for record in refused_jobs(sweep):
            overrides = parse_overrides(record.get("overrides"))
            settings = (sweep, tuple(sorted(overrides.items())))
            if settings in present:
                continue
            where = "" if sweep == root else f"{sweep.relative_to(root)}/"
            row = {"job": f"{where}#{record.get('job')}", "overrides": overrides, "sweep": sweep}
            row |= {"status": "refused", "error": str(record.get("reason", "")), "sets": {}}
            for column in ("epochs", "monitor_best", "best_epoch", "test_f1", "wall_time_s"):
                row[column] = None
            for name in scores():
                row[f"best_{name}"] = row[f"final_{name}"] = None
            found[settings] = row  # the records are oldest first: the newest stays
    return list(found.values())


def build_rows(root: Path, monitor: str = "eval_f1") -> list[dict[str, Any]]:
    """All job rows under `root`, best monitored metric first, jobs without metrics last; the
    refused jobs of its sweeps (which have no directory) among them."""
    if not root.is_dir():
        raise UserError(f"{root}: not a directory")
    jobs = find_job_dirs(root)
    rows = [job_row(job, root, monitor) for job in jobs]
    for row, job in zip(rows, jobs, strict=True):
        row["sweep"] = job.parent
    sweep_jobs = [(j, r["overrides"]) for j, r in zip(jobs, rows, strict=True) if _in_sweep(j)]
    repeated = repeats(sweep_jobs)
    for row, job in zip(rows, jobs, strict=True):
        if job in repeated:
            first = str(repeated[job].relative_to(root))
            row["repeat_of"] = first
            note = (
                f"the same settings as job {first} (a sweep launched again into its directory "
                "numbers its jobs anew): one replicate twice, counted once in the seed groups"
            )
            row["error"] = f"{row['error']}; {note}" if row["error"] else note
    rows += refused_rows(root, jobs, rows)
    if not rows:
        raise UserError(f"{root}: no job directories (holding .hydra/ or attempts/) under it")
    sign = 1.0 if mode_of(monitor) == "min" else -1.0
    return sorted(
        rows,
        key=lambda r: (r["monitor_best"] is None, sign * (r["monitor_best"] or 0.0), r["job"]),
    )


def _in_sweep(job: Path) -> bool:
    """Is `job` one of a Hydra sweep's jobs (its directory holds multirun.yaml, or records of
    refused jobs)? Runs of a runs directory with the same command are not repeats of a setting."""
    return (job.parent / "multirun.yaml").is_file() or (job.parent / SWEEP_RECORDS).is_dir()


COMPARE_HELP = (
    "--compare A B: a side is a run directory or comma-separated runs (a group of seeds); "
    "--compare SWEEP --by KEY groups a sweep's finished jobs by KEY's value. Two runs: 95% "
    "interval of F1(A) - F1(B) from a paired bootstrap over sentences, p from an approximate "
    "randomisation test; two groups: a two-level bootstrap (runs and sentences) and a "
    "permutation test over the runs (ner/tools/compare.py, ner/report/paired.py). A run made "
    "before runs saved predictions: ner-evaluate RUN --save-predictions."
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ner-report", description=__doc__.split("\n")[0], epilog=COMPARE_HELP
    )
    parser.add_argument("dir", type=Path, nargs="?", help="a runs directory or a sweep directory")
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="RUNS",
        help="A B: two runs (or comma-separated groups of runs) compared on the same sentences "
        "from their saved predictions: F1 difference, 95%% interval, p; or one sweep with --by",
    )
    parser.add_argument("--by", metavar="KEY", help="--compare SWEEP: its groups by KEY's value")
    parser.add_argument("--values", nargs=2, metavar="V", help="--by: the two values compared")
    parser.add_argument(
        "--resamples",
        type=int,
        default=1000,
        help="--compare: bootstrap resamples and randomisation rounds (default: 1000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="--compare: their seed (default: 0)")
    parser.add_argument("--format", choices=FORMATS, default="markdown", help="of the output")
    parser.add_argument("--all", action="store_true", help="every column, not the usual few")
    parser.add_argument("--csv", type=Path, help="also write the table as CSV here")
    parser.add_argument("--markdown", type=Path, help="also write the report as markdown here")
    parser.add_argument("--monitor", default="eval_f1", help="metric that picks the best epoch")
    args = parser.parse_args(argv)
    if (args.dir is None) == (args.compare is None):
        parser.error("give a runs directory, or --compare")
    if args.compare and len(args.compare) != (1 if args.by else 2):
        parser.error("--compare takes two runs (A B), or one sweep with --by KEY")
    if args.resamples < 1:
        parser.error("--resamples must be >= 1")
    try:
        if args.compare:
            return compare_main(args)
        rows = build_rows(args.dir, args.monitor)
        text = report(args.dir, rows, args.monitor, args.format, args.all)
        for fmt, path in (("csv", args.csv), ("markdown", args.markdown)):
            if path:
                path.write_text(report(args.dir, rows, args.monitor, fmt, args.all))
    except (UserError, OSError) as e:
        return exit_on_error(e)
    sys.stdout.write(text)
    return 0


def compare_main(args: argparse.Namespace) -> int:
    """`--compare A B` or `--compare SWEEP --by KEY`: ner/tools/compare.py's report."""
    if args.by:
        root = compare.side(args.compare[0])[0]
        jobs = [(job, read_overrides(job)) for job in find_job_dirs(root)]
        chosen = compare.by_key(jobs, args.by, args.values)
        groups = [runs for _, runs in chosen]
        names = [
            f"{args.by}={value}: {', '.join(str(r.relative_to(root)) for r in runs)}"
            for value, runs in chosen
        ]
    else:
        groups = [compare.side(a) for a in args.compare]
        names = [", ".join(map(str, runs)) for runs in groups]
    text, _ = compare.compare(groups, names, args.resamples, args.seed, args.format)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
