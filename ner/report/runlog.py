"""What a run records: `log_history.json` (like the Trainer's), TensorBoard scalars, what rank 0
prints (train.log), and where the run came from (commit, command, framework versions).

The log history's entries, in the Trainer's form: train entries (loss, learning_rate, epoch,
step), one eval entry per epoch (eval_<metric>, train_loss), a test entry (test_<metric>) and a
final entry (train_runtime, best_epoch, best_metric, monitor, lr_schedule). The loop picks the best
epoch by one rule (ner/metrics.py) and records it in the final entry; readers take it from there
through the history's one reader (ner/report/history.py).

Rank 0 only: on other ranks every method is a no-op. The history is kept in memory (it goes into
checkpoints, so a resumed run continues the same list) and rewritten atomically after each epoch.
TensorBoard is opened with `purge_step` on resume, so events written after the checkpoint by the
interrupted run are discarded instead of drawn twice.
"""

from __future__ import annotations

import functools
import sys
import threading
from pathlib import Path

from ner.atomic import NO_SPACE, write_json
from ner.errors import UserError
from ner.metrics import mean_over_sets, names


def unrecorded(what: str, problem: str, error: OSError, run_dir: Path) -> UserError:
    """The one line for a record of the run that could not be written (a full disk)."""
    full = error.errno in NO_SPACE
    return UserError(
        f"{what}: {problem} ({'no space left' if full else error.strerror}); "
        + ("free some space and " if full else "")
        + f"run again with hydra.run.dir={run_dir} to resume from its last checkpoint"
    )


def _writes_events(method):
    """A RunLog method that writes TensorBoard events: an OSError there (a full disk, met when
    the event file is made or at any later write) is one line naming the directory."""

    @functools.wraps(method)
    def writing(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except OSError as e:
            where = f"TensorBoard {self.run_dir / 'tensorboard'}"
            raise unrecorded(where, "cannot write its events", e, self.run_dir) from e

    return writing


def _quiet_event_writer_threads() -> None:
    """TensorBoard writes events in a thread of its own, which keeps its error for the next call
    of the main thread to raise (one line, `_writes_events`): threading's hook would first print
    it as a traceback."""
    previous = threading.excepthook
    if getattr(previous, "leaves_tensorboard_to_runlog", False):
        return

    def hook(args) -> None:
        if not type(args.thread).__module__.startswith("tensorboard.summary.writer"):
            previous(args)

    hook.leaves_tensorboard_to_runlog = True
    threading.excepthook = hook


class RunLog:
    @_writes_events
    def __init__(
        self,
        run_dir: Path,
        enabled: bool,
        history: list[dict] | None = None,
        purge_step: int | None = None,
    ):
        self.run_dir = run_dir
        self.enabled = enabled
        self.history: list[dict] = history if history is not None else []
        self.tb = None
        self._session_end = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            _quiet_event_writer_threads()
            self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step)

    @_writes_events
    def train(self, step: int, epoch: float, loss: float, lr: float, **scalars: float) -> None:
        """A train entry: the loss and learning rate, and any other scalar the loop passes
        (`grad_norm=...`: the entry's key and TensorBoard's `train/grad_norm`)."""
        if not self.enabled:
            return
        self.history.append(
            {"loss": loss, **scalars, "learning_rate": lr, "epoch": round(epoch, 4), "step": step}
        )
        self.tb.add_scalar("train/loss", loss, step)
        for name, value in scalars.items():
            self.tb.add_scalar(f"train/{name}", value, step)
        self.tb.add_scalar("train/lr", lr, step)

    @_writes_events
    def evaluation(
        self,
        prefix: str,
        epoch: float,
        step: int,
        results: dict,
        extra: dict | None = None,
        named: bool | None = None,
    ) -> dict:
        """Record an evaluation (prefix `eval` per epoch, `test` at the end) of one or several
        named sets ({name: result}); returns the entry.

        One set: `<prefix>_<metric>` and TensorBoard `<prefix>/<metric>`, as always. Several:
        each set's `<prefix>_<name>_<metric>` and `<prefix>/<name>/<metric>`, and the plain keys
        hold the macro mean over the sets. `named`: a run of several sets names even one (a test
        split that only one of its sets has).
        """
        entry = {"epoch": epoch, "step": step, **(extra or {})}
        scalars: dict[str, float] = {}  # TensorBoard tag (after the prefix) -> value
        # (log key part, TensorBoard tag part, result) of each set; one set is unnamed.
        parts = [("", "", r) for r in results.values()]
        if len(results) > 1 if named is None else named:
            parts = [(f"{name}_", f"{name}/", r) for name, r in results.items()]
            for key, mean in mean_over_sets(results).items():
                entry[f"{prefix}_{key}"] = scalars[key] = mean
        for part, tag, result in parts:
            for key in names():
                entry[f"{prefix}_{part}{key}"] = result[key]
                scalars[f"{tag}{key}"] = result[key]
            entry[f"{prefix}_{part}runtime"] = round(result["runtime"], 4)
            entry[f"{prefix}_{part}samples_per_second"] = round(result["samples_per_second"], 3)
            entry[f"{prefix}_{part}per_type"] = result["per_type"]
        if self.enabled:
            self.history.append(entry)
            for tag, value in scalars.items():
                # x axis: the epoch (an integer for per-epoch curves) ...
                self.tb.add_scalar(f"{prefix}/{tag}", value, int(round(epoch)))
                # ... and the optimizer step, to line up with train/loss
                self.tb.add_scalar(f"{prefix}_by_step/{tag}", value, step)
            for _, tag, result in parts:
                for name, r in result["per_type"].items():
                    self.tb.add_scalar(
                        f"{prefix}_per_type/{tag}{name}_f1", r["f1"], int(round(epoch))
                    )
            if "train_loss" in entry:
                self.tb.add_scalar("train/epoch_loss", entry["train_loss"], int(round(epoch)))
            self.tb.flush()
        return entry

    @_writes_events
    def set_layout(self, sets: list[str]) -> None:
        """With several evaluation sets, TensorBoard's Custom Scalars tab draws each metric of
        every set (and their mean) on one chart."""
        if not self.enabled or len(sets) < 2:
            return
        charts = {
            key: ["Multiline", [*(f"eval/{s}/{key}" for s in sets), f"eval/{key}"]]
            for key in names()
        }
        self.tb.add_custom_scalars({"evaluation sets": charts})

    @_writes_events
    def hparams(self, params: dict, monitor: str) -> None:
        """Declare the run to TensorBoard's HParams dashboard: its hyperparameters and the scalar
        tags to show beside them (their last values: the best monitored value, every metric,
        the test F1). The session's end is written by close()."""
        if not self.enabled:
            return
        from torch.utils.tensorboard.summary import hparams

        tags = [f"best/{monitor}", *(f"eval/{name}" for name in names()), "test/f1"]
        experiment, start, self._session_end = hparams(params, dict.fromkeys(tags, 0.0))
        self.tb.file_writer.add_summary(experiment)
        self.tb.file_writer.add_summary(start)

    @_writes_events
    def best_so_far(self, epoch: float, monitor: str, value: float) -> None:
        if self.enabled:
            self.tb.add_scalar(f"best/{monitor}", value, int(round(epoch)))

    def final(self, entry: dict) -> None:
        if self.enabled:
            self.history.append(entry)

    def save(self) -> None:
        if self.enabled:
            write_json(self.run_dir / "log_history.json", self.history)

    @_writes_events
    def text(self, tag: str, markdown: str) -> None:
        if self.enabled:
            self.tb.add_text(tag, markdown)
            self.tb.flush()

    @_writes_events
    def close(self, finished: bool = False) -> None:
        if self.tb is not None:
            if finished and self._session_end is not None:
                self.tb.file_writer.add_summary(self._session_end)
            self.tb.close()


class Printer:
    """Rank 0's voice: prints and appends to <run dir>/train.log; silent on other ranks.

    Until the run is accepted (`open`) the lines are printed and held, so that a run refused
    during its preparation writes nothing into the run directory.

    Progress: tqdm draws a bar on stderr when it is a terminal. Otherwise (nohup, Slurm, a pipe)
    the loop's progress line every trainer.log_every steps is printed instead. The lines go into
    train.log either way, so the log does not depend on where the output went.
    """

    def __init__(self, run_dir: Path, enabled: bool):
        self.enabled = enabled
        self.path = run_dir / "train.log"
        self.held: list[str] | None = []
        self.bars = sys.stderr.isatty()

    def __call__(self, line: str, echo: bool = True) -> None:
        if not self.enabled:
            return
        if echo:
            print(line, flush=True)
        if self.held is not None:
            self.held.append(line)
            return
        self._append([line])

    def open(self) -> None:
        """The run was accepted: what was said so far goes into train.log, the rest as it comes."""
        held, self.held = self.held or [], None
        if self.enabled and held:
            self._append(held)

    def _append(self, lines: list[str]) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
        except OSError as e:
            raise unrecorded(f"log {self.path}", "cannot append", e, self.path.parent) from e

    def progress(self, total: int, initial: int, desc: str, enabled: bool):
        from tqdm.auto import tqdm

        return tqdm(
            total=total,
            initial=initial,
            desc=desc,
            disable=not (self.enabled and enabled and self.bars),
            dynamic_ncols=True,
            leave=False,
        )

    def step(self, line: str, enabled: bool) -> None:
        """A progress line: into train.log; printed when no bar is drawn."""
        if enabled:
            self(line, echo=not self.bars)


def progress_line(
    step: int,
    total: int,
    epoch: float,
    epochs: int,
    loss: float,
    lr: float,
    steps_per_s: float,
    batch: int,
    elapsed_s: float,
) -> str:
    """`step 120/6667 (epoch 0.05/3), loss 0.4312, lr 4.50e-05, 52.1 samples/s, elapsed 0:01:23,
    ETA 0:45:10`: samples/s is the global batch times optimizer steps per second of training;
    the ETA is the remaining steps at that rate (evaluations not included)."""
    eta = _clock((total - step) / steps_per_s) if steps_per_s > 0 else "?"
    return (
        f"step {step}/{total} (epoch {epoch:.2f}/{epochs}), loss {loss:.4f}, lr {lr:.2e}, "
        f"{steps_per_s * batch:.1f} samples/s, elapsed {_clock(elapsed_s)}, ETA {eta}"
    )


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}"
