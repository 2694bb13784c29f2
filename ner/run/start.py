"""Where an accepted run starts in its directory: fresh, from a checkpoint, or not at all; and
whether a checkpoint can go on as this run beyond its config (the same global batch, the same
data), and what a finished run's rerun says.

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

from ner import checkpoint, config
from ner.atomic import read_json
from ner.checkpoint import Progress
from ner.errors import UserError, counted
from ner.run import layout


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
    if mode != "auto":
        refuse_another_run(run_dir, path)
    ckpt = checkpoint.load_resumable(path)
    saved = yaml.safe_load(ckpt["config"])
    diff = config.computed_differences(saved, cfg, ("trainer.epochs", *BATCH_SPLIT))
    if diff and mode == "auto":
        raise UserError(
            f"checkpoint {path} was made with another configuration ({'; '.join(diff[:5])}"
            f"{'; ...' if len(diff) > 5 else ''}): choose another hydra.run.dir for a new run"
        )
    check_global_batch(saved, len(ckpt["rng"]), cfg, world_size, path)  # on any path
    if diff:  # an explicit path: continuing under new settings is the user's choice
        print(f"warning: resuming {path} with changed settings: {'; '.join(diff)}", file=sys.stderr)
    progress = ckpt["progress"]
    if cfg.trainer.epochs < progress["epoch"] and mode == "auto":
        raise UserError(
            f"config: trainer.epochs={cfg.trainer.epochs}, but checkpoint {path} has already "
            f"completed {counted(progress['epoch'], 'epoch')}; a run can be extended, not shortened"
        )
    result = read_json(run_dir / "result.json")
    done = progress["epoch"] >= cfg.trainer.epochs or Progress(**progress).patience_ran_out(
        cfg.trainer.early_stopping_patience
    )
    if not (isinstance(result, dict) and result.get("status") == "finished"):
        result = None
    if mode == "auto" and done and result:
        return Start("finished", path, ckpt, result)
    return Start("resume", path, ckpt, result if mode == "auto" else None)


def refuse_another_run(run_dir: Path, path: Path) -> None:
    """trainer.resume=PATH continues PATH's run in `run_dir`: refused in one line when `run_dir`
    already holds a run of its own (a checkpoint, an attempt, a result) and PATH is not one of
    that run's checkpoints, whose files the resumed run would write over."""
    holds = [
        f for f in (run_dir / "checkpoints" / "last.pt", run_dir / "result.json") if f.exists()
    ] + layout.attempts(run_dir)[:1]
    own = (run_dir / "checkpoints").resolve()
    if not holds or Path(path).resolve().parent == own:
        return
    raise UserError(
        f"run dir {run_dir} already holds another run ({holds[0]}); trainer.resume={path} would "
        f"write over it: resume into a new directory (hydra.run.dir=NEW trainer.resume={path}), "
        "or continue this directory's own run with trainer.resume=auto"
    )


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
    diff = config.computed_differences(saved, cfg, ("trainer.epochs",))
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


# How a step's examples are dealt out: per-rank micro-batches and accumulation may change on a
# resume; their product with the number of processes, the global batch, may not (with it the
# steps of an epoch, the schedule and the position in the epoch stay; ner/batching.py).
BATCH_SPLIT = ("trainer.batch_size", "trainer.grad_accum_steps")


def check_global_batch(saved: dict, saved_world: int, cfg, world: int, path: Path) -> None:
    """Refuse a resume at another global batch (another experiment under the old run's name),
    saying how to keep it on this many processes."""
    old_batch, old_accum = (
        saved["trainer"]["batch_size"],
        saved["trainer"].get("grad_accum_steps", 1),
    )
    old = old_batch * saved_world * old_accum
    batch, accum = cfg.trainer.batch_size, cfg.trainer.grad_accum_steps
    if batch * world * accum == old:
        return
    processes = counted(world, "process", "processes")
    if old % (world * accum) == 0:
        keep = f"on {processes} keep it with trainer.batch_size={old // (world * accum)}"
    elif old % world == 0:
        keep = (
            f"on {processes} keep it with trainer.batch_size={old // world} "
            "trainer.grad_accum_steps=1"
        )
    else:
        keep = (
            f"{old} sentences do not split over {processes}: resume on a number that divides {old}"
        )
    then = counted(saved_world, "process", "processes")
    raise UserError(
        f"checkpoint {path} was trained at global batch {old} ({then} x "
        f"trainer.batch_size={old_batch} x trainer.grad_accum_steps={old_accum}), this run's is "
        f"{batch * world * accum} ({processes} x {batch} x {accum}): another schedule and other "
        f"steps; {keep}"
    )


def same_data(start, fingerprints: dict[str, str], refuse: bool) -> None:
    """Every source and split the checkpoint was trained and scored on is the same now (their
    fingerprints, ner/data/corpus.py), as a changed config key is: refused when resuming a run
    directory, a warning from an explicit trainer.resume=PATH."""
    path, saved = start.path, start.checkpoint.get("data")
    if saved is None:
        print(
            f"warning: checkpoint {path} predates data fingerprints, so whether this run's data is "
            "the data it was trained on cannot be checked; resuming (its next checkpoint keeps "
            "this data's fingerprints)",
            file=sys.stderr,
        )
        return
    changed = [
        k for k in dict.fromkeys([*saved, *fingerprints]) if saved.get(k) != fingerprints.get(k)
    ]
    if not changed:
        return
    sets = ", ".join(changed)
    if refuse:
        raise UserError(
            f"checkpoint {path} was trained on other data: {sets} changed since (sentences or "
            "tags); give the run its data back, or choose another hydra.run.dir for a new run"
        )
    print(f"warning: resuming {path} on other data: {sets} changed since", file=sys.stderr)


def nothing_to_do(cfg, start, run_dir: Path) -> str:
    """What a rerun of a finished run says (rank 0, which holds its checkpoint), and which
    setting would train it on."""
    result, t = start.result, cfg.trainer
    done = (
        f"run dir {run_dir} holds a finished run (best {result.get('monitor')} "
        f"{result.get('best')}); nothing to do."
    )
    if start.checkpoint is None:  # trainer.keep_checkpoints removed last.pt after it finished
        return (
            f"{done} Its checkpoints were removed (trainer.keep_checkpoints): it cannot be extended"
        )
    progress = Progress(**start.checkpoint["progress"])
    patience = t.early_stopping_patience
    if not progress.patience_ran_out(patience):
        return f"{done} To train it longer, raise trainer.epochs"
    early = (
        f" It stopped early after epoch {progress.epoch} of {t.epochs}: {t.monitor} did not "
        f"improve for {counted(patience, 'evaluation')}."
    )
    if progress.epoch < t.epochs:
        return f"{done}{early} To train on, raise trainer.early_stopping_patience (0: never stop)"
    return f"{done}{early} To train it longer, raise trainer.epochs and early_stopping_patience"
