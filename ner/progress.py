"""Where the loop stands (`Progress`, saved in every checkpoint) and the time it took
(`Stopwatch`, the one account of the training time)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ner.metrics import is_better


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


class Stopwatch:
    """The run's time, one account: the training seconds, counted from `start` to `stop` and
    folded into the progress's train_seconds at each stop (evaluation and checkpoints are not
    counted, a checkpoint holds the time up to it), and the wall seconds over every attempt."""

    def __init__(self, progress: Progress, wall_before: float, started: float):
        self.progress = progress
        self.since: float | None = None  # perf_counter() at start; None while stopped
        self.wall_before, self.started = wall_before, started  # earlier attempts; time.time()
        self.first = (progress.global_step, progress.train_seconds)  # this attempt's rate

    def start(self) -> None:
        self.since = time.perf_counter()

    def stop(self) -> None:
        assert self.since is not None, "the stopwatch was not running"
        self.progress.train_seconds += time.perf_counter() - self.since
        self.since = None

    def elapsed(self) -> float:
        """The training seconds so far, the running stretch included."""
        running = 0.0 if self.since is None else time.perf_counter() - self.since
        return self.progress.train_seconds + running

    def steps_per_second(self) -> float:
        """This attempt's optimizer steps per training second so far."""
        step, seconds = self.first
        seconds = self.elapsed() - seconds
        return (self.progress.global_step - step) / seconds if seconds > 0 else 0.0

    def wall(self) -> float:
        """Wall seconds over every attempt: the earlier ones' and this one's so far."""
        return self.wall_before + time.time() - self.started
