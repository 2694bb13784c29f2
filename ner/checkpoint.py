"""The training state (`TrainState`) and its checkpoints: atomic save, safe load, exact resume,
export to Hugging Face format.

A checkpoint is one file written by rank 0, the record of one `TrainState`: model, optimizer,
scheduler and grad-scaler states (under trainer.strategy=fsdp the model and optimizer are every
rank's shards instead, which last.pt names: ner/sharded_checkpoint.py), the loop's position
(`Progress`: epoch, step inside the epoch, global step), the best metric so far, the log
history, the RNG streams of every rank, the label list, the resolved config and the fingerprints
of the data (every source and split: a resume onto other data is refused, ner/run/start.py).
It is written to a temporary file, fsynced, then renamed over
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
import random
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ner import atomic, distributed, sharded_checkpoint, sharding
from ner.disk_size import saved_bytes
from ner.errors import UserError, counted
from ner.metrics import is_better
from ner.optimization import check_groups

FORMAT_VERSION = 1


def atomic_save(obj: dict, path: Path) -> None:
    """torch.save, atomically (ner/atomic.py): a full disk keeps the previous file and says so."""
    needed = saved_bytes(obj)  # the tensors and the zip archive around them
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
    # step-N.pt may be a second name of the same file (a hard link): not another checkpoint.
    others = [
        p
        for p in sorted(path.parent.glob("*.pt"))
        if p.name != "best.pt" and not (path.exists() and os.path.samefile(p, path))
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
    if "shards" in ckpt:
        sharded_checkpoint.check(ckpt, Path(path))
    if "optimizer" not in ckpt and "shards" not in ckpt:
        raise UserError(
            f"checkpoint {path} holds the model weights only (best.pt is for evaluation and "
            f"export), so a run cannot resume from it{_others(Path(path))}"
        )
    return ckpt


WEIGHTS_ONLY = ("format", "model", "labels", "config", "progress")  # what best.pt holds


def weights(ckpt: dict, path: Path) -> dict:
    """The whole model weights of checkpoint `ckpt`, read from `path`: its own, or those of the
    shards it names (read by this process alone)."""
    if "shards" in ckpt:
        return sharded_checkpoint.weights(ckpt, path)
    return ckpt["model"]


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


def _best_disagrees(progress: dict, best_pt: Path) -> tuple[float, str, bool] | None:
    """When `best_pt` does not hold the epoch that the record `progress` calls best: (that
    epoch, what best.pt holds in words, whether the record was saved at the end of that epoch,
    so that its own weights are the best ones). None when they agree or nothing was evaluated."""
    want, have = progress.get("best_epoch"), saved_best_epoch(best_pt)
    if want is None or have == want:
        return None
    found = "is missing or unreadable" if have is None else f"holds epoch {have:g}'s weights"
    return want, found, progress["epoch"] == want and progress["step_in_epoch"] == 0


def _reconcile_best(directory: Path, ckpt: dict, path: Path) -> str | None:
    target = directory / "best.pt"
    disagreement = _best_disagrees(ckpt["progress"], target)
    if disagreement is None:
        return None
    want, found, record_holds_best = disagreement
    if record_holds_best:
        # Saved at the end of the best epoch itself (killed before best.pt was written).
        write_best(
            directory, {**{k: ckpt.get(k) for k in WEIGHTS_ONLY}, "model": weights(ckpt, path)}
        )
        return f"{target} {found}; rewritten from {path}, saved at the end of best epoch {want:g}"
    beside = path.parent / "best.pt"  # an explicit trainer.resume from another directory
    if beside.resolve() != target.resolve() and saved_best_epoch(beside) == want:
        write_best(directory, {k: load(beside)[k] for k in WEIGHTS_ONLY})
        return f"{target} {found}; copied from {beside}, which holds best epoch {want:g}"
    raise UserError(
        f"checkpoint {path} records its best evaluation at epoch {want:g}, but {target} "
        f"{found} and no checkpoint holds epoch {want:g}'s weights: resume from a checkpoint "
        "saved after best.pt (trainer.resume=PATH), or start the run anew in another directory"
    )


def record_best(directory: Path) -> tuple[Path, str | None]:
    """For a reader of a run's best weights (ner-evaluate, ner-predict), without writing: the
    checkpoint in `directory` that holds the record's best epoch, and a line when it is not
    best.pt. A kill between last.pt and best.pt leaves last.pt's record naming the epoch it was
    saved at, beside an older best.pt: last.pt's own weights are then the best ones (the next
    run rewrites best.pt from them: `reconcile_best`)."""
    best_pt, last_pt = directory / "best.pt", directory / "last.pt"
    if not last_pt.is_file():
        return best_pt, None
    disagreement = _best_disagrees(load(last_pt)["progress"], best_pt)
    if disagreement is None:
        return best_pt, None
    want, found, record_holds_best = disagreement
    if record_holds_best:
        return last_pt, (
            f"{best_pt} {found}, but the run's record has its best evaluation at epoch "
            f"{want:g} (a kill between the two writes): {last_pt}, saved at the end of that "
            "epoch, holds its weights and is read instead"
        )
    raise UserError(
        f"{best_pt} {found}, but the run's record ({last_pt}) has its best evaluation at epoch "
        f"{want:g}, and no checkpoint holds that epoch's weights: evaluate a checkpoint by name "
        "(--checkpoint last), or resume the run, which repairs best.pt or says why it cannot"
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
    if "shards" in ckpt:
        theirs = sharded_checkpoint.saved_shapes(ckpt, path)
    else:
        theirs = {k: tuple(v.shape) for k, v in ckpt["model"].items()}
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
class Progress:
    """Where the loop stands; saved in every checkpoint."""

    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # optimizer steps done in the current epoch
    global_step: int = 0
    best: float | None = None
    best_epoch: float | None = None
    evals_without_improvement: int = 0
    train_seconds: float = 0.0
    wall_seconds: float = 0.0  # over every attempt, up to the last checkpoint
    epoch_loss_sum: float = 0.0  # summed over ranks, up to the last checkpoint
    epoch_loss_count: int = 0  # labelled tokens (with optim.class_weights: their summed weights)
    window_loss_sum: float = 0.0  # the same since the last train log (trainer.log_every)
    window_loss_count: int = 0
    # [first step, total steps] of each learning-rate schedule the run has followed: one, unless
    # a finished run was extended with more epochs (README: "Extending a finished run").
    schedule: list[list[int]] = field(default_factory=list)

    def epochs_done(self, per_epoch: int) -> float:
        """Epochs completed so far, as a fraction: the x of the log's train entries."""
        return self.epoch + self.step_in_epoch / per_epoch

    def position(self, epochs: int) -> str:
        """The last step done and its epoch, as people count epochs (from 1): "step 223 (epoch 2
        of 10)"; the same words when a run stops and when it resumes."""
        epoch = self.epoch if self.step_in_epoch == 0 and self.epoch else self.epoch + 1
        return f"step {self.global_step} (epoch {epoch} of {epochs})"

    def patience_ran_out(self, patience: int) -> bool:
        """The early-stopping rule, written once: `patience` (trainer.early_stopping_patience)
        evaluations in a row without improvement end training; 0 never does. The loop stops on
        it, a rerun reads a run it stopped as finished (ner/run/start.py), the card says so."""
        return bool(patience) and self.evals_without_improvement >= patience

    def step_limit_reached(self, stop_after_steps: int) -> bool:
        """trainer.stop_after_steps: the run stops (cut short, resumable) after that many
        optimizer steps in all; 0 never does."""
        return bool(stop_after_steps) and self.global_step >= stop_after_steps

    def evaluated(self, value: float, epoch: int, mode) -> bool:
        """Record epoch `epoch`'s value of trainer.monitor; True when it is the best so far (by
        ner/metrics.py's one rule)."""
        improved = is_better(value, self.best, mode)
        if improved:
            self.best, self.best_epoch = value, float(epoch)
        self.evals_without_improvement = 0 if improved else self.evals_without_improvement + 1
        return improved


def rng_state(device: torch.device) -> dict:
    """This process's RNG streams (python, numpy, torch CPU, CUDA), as weights_only-safe values:
    saved for every rank, so a resumed run draws what an uninterrupted one would."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def write_best(directory: Path, record: dict) -> None:
    """The one writer of best.pt: `record` holds the weights of the best evaluation and what
    names them (WEIGHTS_ONLY: the format, the weights, labels, config, the progress they were
    saved at, whose best_epoch says which epoch they are)."""
    assert tuple(record) == WEIGHTS_ONLY, f"best.pt holds {WEIGHTS_ONLY}, not {tuple(record)}"
    atomic_save(record, directory / "best.pt")


@dataclass
class TrainState:
    """Everything a run saves and restores, as one object; last.pt is its record (`save`,
    `restore`). The loop builds it (ner/prepare.py `training_state`); a resumed run then restores
    it. A new piece of training state (a moving average of the weights, ...) is a field here,
    one key in `save`'s record and one line in `restore`; if it changes which weights are
    evaluated, kept as best and exported, `evaluated_model` returns them."""

    model: torch.nn.Module  # the plain model, not DDP's wrapper; under fsdp sharded in place
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    progress: Progress
    history: list[dict]  # the log history; the run's RunLog appends to this list
    labels: list[str]
    config_yaml: str  # the resolved config
    data: dict[str, str]  # the fingerprint of every source and split (ner/data/corpus.py)

    def evaluated_model(self) -> torch.nn.Module:
        """The weights that are evaluated, kept as best.pt and exported: the model being trained."""
        return self.model

    def update_weights(self, max_grad_norm: float) -> torch.Tensor | None:
        """The step's work on the device: clip the whole gradient to `max_grad_norm` (0: no
        clipping; its norm over every rank's shards under fsdp), step the optimizer through the
        grad scaler, clear the gradients. Nothing here reads a value back to the host (fp16's
        grad scaler aside), so a CUDA graph can hold it (ner/step_graphs.py). A piece of state
        that follows the weights (a moving average of them) is updated here. Returns the
        gradient's norm before clipping, on the device (None without clipping)."""
        norm = None
        if max_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            norm = sharding.clip_gradients(self.model, max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    def advance(self) -> None:
        """The step's work on the host, after `update_weights`: advance the schedule (the next
        step's learning rate) and count the step."""
        self.scheduler.step()
        self.progress.global_step += 1
        self.progress.step_in_epoch += 1

    def save(self, directory: Path, env, best_improved: bool = False, keep_steps: int = 0) -> None:
        """Every rank calls it; rank 0 is the one writer. last.pt is written atomically, then
        step-<N>.pt as a second name of it (`keep_steps` > 0 keeps the newest so many), then,
        when the monitored metric improved, best.pt (after last.pt: see the module docstring).

        Every rank first hands over what only it has: its RNG streams, and under fsdp its
        shards of the model and optimizer (ner/sharded_checkpoint.py), which last.pt then names
        instead of holding them; best.pt's weights are gathered whole."""
        rngs = distributed.all_gather_objects(rng_state(env.device), env)
        step = self.progress.global_step
        if sharding.is_sharded(self.model):
            pieces = {"shards": sharded_checkpoint.write(self, directory, step, env)}
            best = sharding.model_state(self.evaluated_model()) if best_improved else None
        else:
            pieces = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
            best = self.evaluated_model().state_dict() if best_improved else None
        if not env.is_main:
            return
        last = {
            "format": FORMAT_VERSION,
            "labels": self.labels,
            "config": self.config_yaml,
            "progress": asdict(self.progress),
            **pieces,
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": self.history,
            "rng": rngs,
            "data": self.data,
        }
        atomic_save(last, directory / "last.pt")
        if keep_steps:
            step_file = directory / f"step-{step}.pt"
            step_file.unlink(missing_ok=True)
            os.link(directory / "last.pt", step_file)  # a second name, not a second write
            prune_steps(directory, keep_steps)
        if "shards" in pieces:  # before best.pt: a kill between the two leaves none behind
            sharded_checkpoint.collect(directory)  # shards that no checkpoint names any more
        if best_improved:
            write_best(directory, {**{k: last.get(k) for k in WEIGHTS_ONLY}, "model": best})

    def restore(self, ckpt: dict, path: Path, env) -> None:
        """Load checkpoint `ckpt`, read from `path`, into this state (every rank). RNG streams
        are restored exactly when the world size is unchanged."""
        check_compatible(ckpt, path, self.labels, self.model)
        if "shards" in ckpt:  # into either strategy, resharded to this run's ranks
            sharded_checkpoint.restore(self, ckpt, path)
        else:
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

    def load_best(self, directory: Path) -> dict:
        """Every rank: load best.pt of `directory` into the evaluated weights, once it is checked
        to hold the record's best epoch; returns its whole weights (for the export)."""
        path = directory / "best.pt"
        best = load(path)
        check_best(best, path, self.progress.best_epoch)
        sharding.load_model_state(self.evaluated_model(), best["model"])
        return best["model"]
