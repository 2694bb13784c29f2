"""Whether a checkpoint can go on as this run, beyond its config (ner/keys.py
computed_differences): the same global batch, the same data; and what a finished run's rerun
says. ner/run/start.py and rundir.py ask these before the run is accepted, so a refusal writes
nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ner.errors import UserError, counted

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
    progress = start.checkpoint["progress"]
    patience = t.early_stopping_patience
    if not (patience and progress["evals_without_improvement"] >= patience):
        return f"{done} To train it longer, raise trainer.epochs"
    early = (
        f" It stopped early after epoch {progress['epoch']} of {t.epochs}: {t.monitor} did not "
        f"improve for {counted(patience, 'evaluation')}."
    )
    if progress["epoch"] < t.epochs:
        return f"{done}{early} To train on, raise trainer.early_stopping_patience (0: never stop)"
    return f"{done}{early} To train it longer, raise trainer.epochs and early_stopping_patience"
