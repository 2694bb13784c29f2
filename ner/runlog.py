"""What a run records: `log_history.json` (like the Trainer's) and TensorBoard scalars.

Rank 0 only: on other ranks every method is a no-op. The history is kept in memory (it goes into
checkpoints, so a resumed run continues the same list) and rewritten atomically after each epoch.
TensorBoard is opened with `purge_step` on resume, so events written after the checkpoint by the
interrupted run are discarded instead of drawn twice.
"""

from __future__ import annotations

from pathlib import Path

from ner.atomic import write_json
from ner.metrics import NAMES


class RunLog:
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

            self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step)

    def train(self, step: int, epoch: float, loss: float, lr: float) -> None:
        if not self.enabled:
            return
        self.history.append(
            {"loss": loss, "learning_rate": lr, "epoch": round(epoch, 4), "step": step}
        )
        self.tb.add_scalar("train/loss", loss, step)
        self.tb.add_scalar("train/lr", lr, step)

    def evaluation(
        self, prefix: str, epoch: float, step: int, result: dict, extra: dict | None = None
    ) -> dict:
        """Record an evaluation (prefix `eval` per epoch, `test` at the end); returns the entry."""
        entry = {"epoch": epoch, "step": step, **(extra or {})}
        for key in NAMES:
            entry[f"{prefix}_{key}"] = result[key]
        entry[f"{prefix}_runtime"] = round(result["runtime"], 4)
        entry[f"{prefix}_samples_per_second"] = round(result["samples_per_second"], 3)
        entry[f"{prefix}_per_type"] = result["per_type"]
        if self.enabled:
            self.history.append(entry)
            for key in NAMES:
                # x axis: the epoch (an integer for per-epoch curves) ...
                self.tb.add_scalar(f"{prefix}/{key}", result[key], int(round(epoch)))
                # ... and the optimizer step, to line up with train/loss
                self.tb.add_scalar(f"{prefix}_by_step/{key}", result[key], step)
            for name, r in result["per_type"].items():
                self.tb.add_scalar(f"{prefix}_per_type/{name}_f1", r["f1"], int(round(epoch)))
            if "train_loss" in entry:
                self.tb.add_scalar("train/epoch_loss", entry["train_loss"], int(round(epoch)))
            self.tb.flush()
        return entry

    def hparams(self, params: dict, metrics: list[str]) -> None:
        """Declare the run to TensorBoard's HParams dashboard: its hyperparameters and the scalar
        tags to show beside them (their last values). The session's end is written by close()."""
        if not self.enabled:
            return
        from torch.utils.tensorboard.summary import hparams

        experiment, start, self._session_end = hparams(params, dict.fromkeys(metrics, 0.0))
        self.tb.file_writer.add_summary(experiment)
        self.tb.file_writer.add_summary(start)

    def best_so_far(self, epoch: float, monitor: str, value: float) -> None:
        if self.enabled:
            self.tb.add_scalar(f"best/{monitor}", value, int(round(epoch)))

    def final(self, entry: dict) -> None:
        if self.enabled:
            self.history.append(entry)

    def save(self) -> None:
        if self.enabled:
            write_json(self.run_dir / "log_history.json", self.history)

    def text(self, tag: str, markdown: str) -> None:
        if self.enabled:
            self.tb.add_text(tag, markdown)
            self.tb.flush()

    def close(self, finished: bool = False) -> None:
        if self.tb is not None:
            if finished and self._session_end is not None:
                self.tb.file_writer.add_summary(self._session_end)
            self.tb.close()


class Printer:
    """Rank 0's voice: prints and appends to <run dir>/train.log; silent on other ranks."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.enabled = enabled
        self.path = run_dir / "train.log"

    def __call__(self, line: str) -> None:
        if not self.enabled:
            return
        print(line, flush=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def progress(self, total: int, initial: int, desc: str, enabled: bool):
        from tqdm.auto import tqdm

        return tqdm(
            total=total,
            initial=initial,
            desc=desc,
            disable=None if self.enabled and enabled else True,  # None: off when not a terminal
            dynamic_ncols=True,
            leave=False,
        )
