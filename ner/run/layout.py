"""Where a run directory keeps what: the names every reader and writer of a run share.

    .hydra/           how the run was first launched (Hydra's files; never rewritten)
    run_info.json     the first attempt's command, commit, versions, world size
    attempts/<k>/     every attempt: config.yaml (resolved), overrides.yaml, launch.json, end.json
    .lock             the run's owner while it runs (ner/run/lock.py)
    checkpoints/      last.pt, best.pt, step-<N>.pt (ner/checkpoint.py)
    log_history.json, tensorboard/, train.log, README.md (the card), curves.png, results.png,
    best_model/
    result.json       the finished run's summary; error.json: why the last attempt stopped

Standard library only, so that light tools (ner-report) can use it.
"""

from __future__ import annotations

from pathlib import Path


def attempts(run_dir: Path) -> list[Path]:
    """The run's attempts/<k> directories, oldest first."""
    numbered = [p for p in (run_dir / "attempts").glob("*") if p.name.isdigit()]
    return sorted(numbered, key=lambda p: int(p.name))


def launch_file(run_dir: Path, name: str) -> Path:
    """The newest attempt's copy of a launch file (config.yaml, overrides.yaml: a run extended
    with more epochs says so there), else the first launch's in .hydra/ (runs of older versions)."""
    copies = [a / name for a in attempts(run_dir) if (a / name).exists()]
    return copies[-1] if copies else run_dir / ".hydra" / name
