"""Checkpoints: atomic save, safe load, exact resume, export to Hugging Face format.

A checkpoint is one file written by rank 0: model, optimizer, scheduler and grad-scaler states
(under trainer.strategy=fsdp gathered whole onto rank 0 first, in the same format: ner/sharding.py),
the loop's position (epoch, step inside the epoch, global step: ner/progress.py), the best metric
so far, the log history, the RNG states of every rank (ner/rng.py), the label list, the resolved
config and the fingerprints of the data (every source and split: a resume onto other data is
refused, ner/run/resumable.py). It is written to a temporary file, fsynced, then renamed over
the old one, so a process killed mid-save leaves the previous checkpoint whole. Loading uses
`torch.load(weights_only=True)`: no code runs from a checkpoint file.

Files under <run dir>/checkpoints: `last.pt` (every epoch and every trainer.save_every_steps),
`best.pt` (model weights of the best evaluation by trainer.monitor), `step-<N>.pt` (the last
trainer.keep_last step checkpoints); once the run has finished, trainer.keep_checkpoints may
remove some or all of them (`retain`).

The record and the best weights. last.pt's progress names the best epoch (`best_epoch`); best.pt
holds that epoch's weights, with the progress they were saved at. An improved epoch writes
last.pt, then best.pt, so a process killed between the two leaves a record whose best epoch is
the epoch it was saved at, beside an older best.pt: the record's own weights are then the best
ones, and a resumed run rewrites best.pt from them (`reconcile_best`). Whatever reads best.pt for
a run (the test, the export) checks that its epoch is the record's best epoch (`check_best`):
one epoch's record is never paired with another epoch's weights.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ner import atomic, distributed, sharded_checkpoint, sharding
from ner.errors import UserError, counted
from ner.optimization import check_groups
from ner.progress import Progress
from ner.rng import set_rng_state

FORMAT_VERSION = 1


def atomic_save(obj: dict, path: Path) -> None:
    """torch.save, atomically (ner/atomic.py): a full disk keeps the previous file and says so."""
    needed = sharded_checkpoint.saved_bytes(obj)  # the tensors and the zip archive around them
    atomic.check_room(path, needed, "checkpoint")
    atomic.write_with(path, lambda f: torch.save(obj, f), needed, "checkpoint")


def load(path: str | Path) -> dict:
    """Load a checkpoint safely (tensors and plain Python values only), memory-mapped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # a torn or foreign file: say which, keep the cause
        raise UserError(
            f"checkpoint {path}: cannot be read ({type(e).__name__}: {e}){_others(path)}"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_VERSION:
        raise UserError(
            f"checkpoint {path}: not a checkpoint of this program (format {FORMAT_VERSION})"
        )
    return ckpt


def _others(path: Path) -> str:
    """The run's other checkpoints that can resume it, and how, for an error message."""
    others = [
        p
        for p in sorted(path.parent.glob("*.pt"))
        if p.resolve() != path.resolve() and p.name != "best.pt"
    ]
    if not others:
        return "; the run has no other checkpoint to resume from"
    names = ", ".join(p.name for p in others)
    return (
        f"; other checkpoints of the run: {names}; resume from one with trainer.resume={others[-1]}"
    )


def load_resumable(path: str | Path) -> dict:
    """A checkpoint a run can continue from (last.pt, step-N.pt): it holds the optimizer too."""
    ckpt = load(path)
    sharded_checkpoint.check(ckpt, Path(path))  # its shards, when it has them
    if "optimizer" not in ckpt and "shards" not in ckpt:
        raise UserError(
            f"checkpoint {path} holds the model weights only (best.pt is for evaluation and "
            f"export), so a run cannot resume from it{_others(Path(path))}"
        )
    return ckpt


WEIGHTS_ONLY = ("format", "model", "labels", "config", "progress")  # what best.pt holds


def saved_best_epoch(path: Path) -> float | None:
    """The epoch whose weights best.pt at `path` holds; None when it is absent or unreadable."""
    try:
        return load(path)["progress"].get("best_epoch")
    except UserError:  # missing or torn: it holds no epoch's weights
        return None


def reconcile_best(directory: Path, ckpt: dict, path: Path, env) -> str | None:
    """Before a resume: make `directory`/best.pt hold the weights of the epoch that the record
    of `ckpt` (loaded from `path`) calls best (rank 0 writes; every rank gets the answer).
    Returns a line saying what it repaired, or None when nothing needed it; refuses in one line
    when no checkpoint holds those weights."""
    outcome: str | UserError | None = None
    if env.is_main:
        try:
            outcome = _reconcile_best(directory, ckpt, path)
        except UserError as e:
            outcome = e
    outcome = distributed.broadcast_object(outcome, env)
    if isinstance(outcome, UserError):
        raise outcome
    return outcome


def _reconcile_best(directory: Path, ckpt: dict, path: Path) -> str | None:
    progress = ckpt["progress"]
    want = progress.get("best_epoch")
    target = directory / "best.pt"
    have = saved_best_epoch(target)
    if want is None or have == want:
        return None
    found = "is missing or unreadable" if have is None else f"holds epoch {have:g}'s weights"
    if progress["epoch"] == want and progress["step_in_epoch"] == 0:
        # Saved at the end of the best epoch itself (killed before best.pt was written).
        weights = {"model": sharded_checkpoint.weights(ckpt, path)}  # a sharded one's too
        atomic_save({k: weights.get(k, ckpt.get(k)) for k in WEIGHTS_ONLY}, target)
        return f"{target} {found}; rewritten from {path}, saved at the end of best epoch {want:g}"
    beside = path.parent / "best.pt"  # an explicit trainer.resume from another directory
    if beside.resolve() != target.resolve() and saved_best_epoch(beside) == want:
        atomic_save({k: v for k, v in load(beside).items() if k in WEIGHTS_ONLY}, target)
        return f"{target} {found}; copied from {beside}, which holds best epoch {want:g}"
    raise UserError(
        f"checkpoint {path} records its best evaluation at epoch {want:g}, but {target} "
        f"{found} and no checkpoint holds epoch {want:g}'s weights: resume from a checkpoint "
        "saved after best.pt (trainer.resume=PATH), or start the run anew in another directory"
    )


def check_best(best: dict, path: Path, best_epoch: float | None) -> None:
    """Refuse best.pt weights that are not those of the record's best epoch."""
    have = best.get("progress", {}).get("best_epoch")
    if have != best_epoch:
        raise UserError(
            f"checkpoint {path} holds the weights of epoch {have}, but the run's record has its "
            f"best evaluation at epoch {best_epoch}; they are not tested or exported as the best"
        )


def check_compatible(ckpt: dict, path: Path, labels: list[str], model: torch.nn.Module) -> None:
    """Refuse a checkpoint of another label set or model shape, naming the difference."""
    if ckpt["labels"] != labels:
        raise UserError(
            f"checkpoint {path}: trained for labels {ckpt['labels']}, but this run has {labels}"
        )
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = sharded_checkpoint.saved_shapes(ckpt, path)
    if own.keys() != theirs.keys():
        missing = sorted(own.keys() - theirs.keys())[:3]
        extra = sorted(theirs.keys() - own.keys())[:3]
        raise UserError(
            f"checkpoint {path}: another model architecture (missing {missing}, unexpected {extra})"
        )
    for k, shape in own.items():
        if theirs[k] != shape:
            raise UserError(f"checkpoint {path}: {k} has shape {theirs[k]}, this model has {shape}")


def prune_steps(directory: Path, keep: int) -> None:
    """Keep the newest `keep` step-<N>.pt files."""
    steps = sorted(directory.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    for old in steps[: max(len(steps) - keep, 0)]:
        old.unlink()


def retain(directory: Path, keep: str) -> tuple[list[str], int]:
    """After a finished run: remove the checkpoints trainer.keep_checkpoints does not keep
    (config.py says what each value allows afterwards). Returns the names and bytes freed."""
    kept = {"all": None, "best": {"best.pt"}, "none": set()}[keep]
    if kept is None:
        return [], 0
    removed = [p for p in sorted(directory.glob("*.pt")) if p.name not in kept]
    inodes = {p.stat().st_ino: p.stat().st_size for p in removed}  # step-N.pt links last.pt
    for path in removed:
        path.unlink()
    return [p.name for p in removed], sum(inodes.values()) + sharded_checkpoint.collect(directory)


def export_hf(model: torch.nn.Module, tokenizer, out_dir: Path) -> None:
    """Save the model's weights, config (with id2label/label2id) and tokenizer in HF format.

    `out_dir` is complete or absent (ner/atomic.py replace_dir), its files follow the umask.
    """

    def fill(tmp: Path) -> None:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))

    atomic.replace_dir(out_dir, fill, "exported model")


@dataclass
class TrainState:
    """Everything a run saves and restores, as one object: the checkpoint is its dict. The loop
    builds it (ner/train.py: the optimizer and schedule of ner/optimization.py, the grad scaler
    of ner/precision.py); a resumed run then restores it."""

    model: torch.nn.Module  # not DDP's wrapper; under fsdp sharded (ner/sharding.py)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    progress: Progress
    history: list[dict]  # the log history; the run's RunLog appends to this list
    labels: list[str]
    config_yaml: str  # the resolved config
    data: dict[str, str]  # the fingerprint of every source and split (ner/data/corpus.py)

    def save(
        self,
        directory: Path,
        rngs: list,
        best_improved: bool,
        keep_steps: int,
        model_state: dict | None,
        optimizer_state: dict | None,
        shards: str | None = None,
    ) -> None:
        """Rank 0: write last.pt (and best.pt when the monitored metric improved) atomically;
        `rngs`: every rank's RNG streams, in rank order; the model's and optimizer's states as
        ner/sharded_checkpoint.py `states` has them: their own state dicts, or for a sharded
        model the name of the directory of their `shards`, which last.pt then holds instead
        (and the whole weights for best.pt)."""
        common = {
            "format": FORMAT_VERSION,
            "model": model_state,
            "labels": self.labels,
            "config": self.config_yaml,
            "progress": asdict(self.progress),
        }
        assert tuple(common) == WEIGHTS_ONLY
        last = {
            **common,
            "optimizer": optimizer_state,
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": self.history,
            "rng": rngs,
            "data": self.data,
        }
        if shards:  # the model and optimizer are in the shards
            last = {k: v for k, v in last.items() if k not in ("model", "optimizer")}
            last["shards"] = shards
        atomic_save(last, directory / "last.pt")
        if keep_steps:
            step_file = directory / f"step-{self.progress.global_step}.pt"
            step_file.unlink(missing_ok=True)
            os.link(directory / "last.pt", step_file)  # a second name, not a second write
            prune_steps(directory, keep_steps)
        if best_improved:  # after last.pt: see the module docstring (reconcile_best)
            atomic_save(common, directory / "best.pt")
        sharded_checkpoint.collect(directory)  # shards that no checkpoint names any more

    def restore(self, ckpt: dict, path: Path, env) -> None:
        """Load a checkpoint into this state (every rank). RNG streams are restored exactly
        when the world size is unchanged."""
        check_compatible(ckpt, path, self.labels, self.model)
        if not sharded_checkpoint.restore(self, ckpt, path):  # shards: into either strategy
            sharding.load_model_state(self.model, ckpt["model"])
            check_groups(self.optimizer, ckpt["optimizer"], path)
            sharding.load_optimizer_state(self.model, self.optimizer, ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        saved = {"schedule": self.progress.schedule, **ckpt["progress"]}
        self.progress = Progress(**saved)
        self.history[:] = ckpt["history"]
        rngs = ckpt["rng"]
        if len(rngs) == env.world_size:
            set_rng_state(rngs[env.rank], env.device)
        else:
            distributed.print0(
                env,
                f"warning: checkpoint from {counted(len(rngs), 'process', 'processes')} resumed "
                f"on {env.world_size}: batches are the same, dropout streams are not",
                file=sys.stderr,
            )
