"""Where an accepted run starts in its directory: fresh, from a checkpoint, or not at all.

`decide` reads the run directory and the config and answers with a `Start`, or refuses in one
line (`trainer.resume=never` over a checkpoint, a checkpoint made with another configuration, a
finished run asked to shorten). It writes nothing: ner/run/rundir.py asks it on rank 0 after
taking the lock and before accepting the run, so a refused run changes no byte of the directory.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from ner import checkpoint, keys
from ner.atomic import read_json
from ner.errors import UserError, counted
from ner.run import layout, resumable


@dataclass
class Start:
    """Where an accepted run starts: "fresh", "resume" (from `path`), or "finished"."""

    kind: str
    path: Path | None = None
    checkpoint: dict | None = None
    result: dict | None = None  # result.json of the run's finished attempt, if one finished


def decide(cfg, run_dir: Path, world_size: int = 1) -> Start:
    """Where the run of `cfg` starts in `run_dir` (trainer.resume: auto, never, or a checkpoint
    path), or a UserError saying in one line why it cannot."""
    mode = cfg.trainer.resume
    last = run_dir / "checkpoints" / "last.pt"
    if mode in ("auto", "never") and not last.exists():
        finished = _finished_without_last(cfg, run_dir, mode)
        if finished is not None:
            return finished
    if mode == "never":
        if last.exists():
            raise UserError(
                f"run dir {run_dir} already holds a checkpoint ({last}); with trainer.resume=never "
                "it would be overwritten: choose another hydra.run.dir, or trainer.resume=auto"
            )
        return Start("fresh")
    if mode == "auto" and not last.exists():
        return Start("fresh")
    path = last if mode == "auto" else Path(mode)
    ckpt = checkpoint.load_resumable(path)
    saved = yaml.safe_load(ckpt["config"])
    diff = keys.computed_differences(saved, cfg, ("trainer.epochs", *resumable.BATCH_SPLIT))
    if diff and mode == "auto":
        raise UserError(
            f"checkpoint {path} was made with another configuration ({'; '.join(diff[:5])}"
            f"{'; ...' if len(diff) > 5 else ''}): choose another hydra.run.dir for a new run"
        )
    resumable.check_global_batch(saved, len(ckpt["rng"]), cfg, world_size, path)  # on any path
    if diff:  # an explicit path: continuing under new settings is the user's choice
        print(f"warning: resuming {path} with changed settings: {'; '.join(diff)}", file=sys.stderr)
    progress = ckpt["progress"]
    if cfg.trainer.epochs < progress["epoch"] and mode == "auto":
        raise UserError(
            f"config: trainer.epochs={cfg.trainer.epochs}, but checkpoint {path} has already "
            f"completed {counted(progress['epoch'], 'epoch')}; a run can be extended, not shortened"
        )
    result = read_json(run_dir / "result.json")
    patience = cfg.trainer.early_stopping_patience
    done = progress["epoch"] >= cfg.trainer.epochs or (
        patience and progress["evals_without_improvement"] >= patience
    )
    if not (isinstance(result, dict) and result.get("status") == "finished"):
        result = None
    if mode == "auto" and done and result:
        return Start("finished", path, ckpt, result)
    return Start("resume", path, ckpt, result if mode == "auto" else None)


def _finished_without_last(cfg, run_dir: Path, mode: str) -> Start | None:
    """A finished run whose last.pt trainer.keep_checkpoints removed: the same command does
    nothing (its newest attempt's config stands for the checkpoint's); what would need last.pt
    (another configuration, more epochs, trainer.resume=never) is refused in one line."""
    result = read_json(run_dir / "result.json")
    config_file = layout.launch_file(run_dir, "config.yaml")
    finished = isinstance(result, dict) and result.get("status") == "finished"
    if not (finished and config_file.is_file()):
        return None
    saved = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    kept = saved.get("trainer", {}).get("keep_checkpoints", "all")
    where = (
        f"run dir {run_dir} holds a finished run without checkpoints/last.pt (removed after it "
        f"finished: trainer.keep_checkpoints={kept})"
    )
    if mode == "never":
        raise UserError(
            f"{where}; with trainer.resume=never it would be overwritten: choose "
            "another hydra.run.dir"
        )
    diff = keys.computed_differences(saved, cfg, ("trainer.epochs",))
    if diff:
        raise UserError(
            f"{where}, made with another configuration ({'; '.join(diff[:5])}"
            f"{'; ...' if len(diff) > 5 else ''}): choose another hydra.run.dir for a new run"
        )
    epochs = saved["trainer"]["epochs"]
    if cfg.trainer.epochs != epochs:
        raise UserError(
            f"{where}: it ran trainer.epochs={epochs} and cannot be extended or shortened to "
            f"{cfg.trainer.epochs}; train a new run in another hydra.run.dir"
        )
    return Start("finished", result=result)
