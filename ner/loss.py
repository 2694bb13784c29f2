"""The training objective and its bookkeeping: change the loss here.

`token_loss` is the summed cross-entropy over the labelled positions of a batch (every position
labelled IGNORE is skipped: sub-tokens after a word's first, context, padding). `logits_of` is
the forward pass under trainer.precision, for training and evaluation alike; `loss_step` adds the
loss, as training computes it (ner/train.py), with the training `Objective`'s variants:
optim.label_smoothing and optim.class_weights (`objective`). Training divides it by
`step_tokens`, the labelled positions of the whole optimizer step over every rank (with class
weights: the sum of their labels' weights, as torch's weighted mean divides), so N ranks at
batch B weight every token as 1 rank at batch N*B does; with dropout off they update alike to
float rounding (tests/test_distributed.py), with dropout on each rank draws its own masks.
Evaluation (ner/evaluate.py) sums the plain `token_loss` over a split, as training does (every
position but the labelled ones is IGNORE): it equals loss_step's (without the variants), so
training and evaluation losses are the same quantity.

`LossTracker` keeps the training loss on the device, so a step never waits for the host: sums
since the last log and over the epoch (folded into the checkpointed progress at every log,
checkpoint and epoch end), and the first step whose loss was not finite.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ner import distributed
from ner.errors import UserError
from ner.features import IGNORE
from ner.precision import autocast


@dataclass(frozen=True)
class Objective:
    """What training minimises per labelled token: cross-entropy with `label_smoothing` (torch's:
    (1 - e) of the label's loss plus e spread evenly over every label) and `weights`, a weight
    per label (None: all 1), each token's loss scaled by its label's (torch's `weight`)."""

    label_smoothing: float = 0.0
    weights: torch.Tensor | None = None  # (L,) float32, on the device


PLAIN = Objective()  # the loss evaluation reports, and training's by default


def token_loss(
    logits: torch.Tensor, labels: torch.Tensor, objective: Objective = PLAIN
) -> torch.Tensor:
    """Sum of cross-entropy over labelled positions; logits (N, L) in float32, labels (N,)."""
    o = objective
    return F.cross_entropy(
        logits,
        labels,
        o.weights,
        ignore_index=IGNORE,
        reduction="sum",
        label_smoothing=o.label_smoothing,
    )


def objective(optim_cfg, labels: list[str], train: list[dict], device) -> Objective:
    """The training objective of optim.label_smoothing and optim.class_weights: null; a list,
    one weight per label of `labels`; or inverse_frequency, from the labelled positions of the
    training windows `train` (each word once): label l of L gets n / (L * n_l), n the labelled
    positions (scikit-learn's "balanced"), so that every label's tokens weigh n / L in all."""
    spec = optim_cfg.class_weights
    if spec is None:
        return Objective(optim_cfg.label_smoothing)
    if spec == "inverse_frequency":
        ids = torch.tensor([y for f in train for y in f["labels"] if y != IGNORE], dtype=torch.long)
        counts = torch.bincount(ids, minlength=len(labels)).double()
        if missing := [name for name, n in zip(labels, counts.tolist(), strict=True) if n == 0]:
            raise UserError(
                f"config: optim.class_weights=inverse_frequency: label {missing[0]} is not in "
                "the training data; give the weights as a list"
            )
        weights = counts.sum() / (len(labels) * counts)
    else:
        if len(spec) != len(labels):
            raise UserError(
                f"config: optim.class_weights has {len(spec)} weights and the data "
                f"{len(labels)} labels ({', '.join(labels)}): give one per label, in that order"
            )
        weights = torch.tensor(list(spec), dtype=torch.float64)
    return Objective(optim_cfg.label_smoothing, weights.float().to(device))


def logits_of(model, batch: dict, device: torch.device, precision: str) -> torch.Tensor:
    """The forward pass under trainer.precision (ner/precision.py): float32 logits (B, T, L)
    of a collated batch (ner/batching.py; its labels are not the model's input)."""
    with autocast(device, precision):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return logits.float()


def loss_step(model, batch: dict, device: torch.device, precision: str, o: Objective = PLAIN):
    """The forward pass and the loss: (float32 logits (B, T, L), summed token loss)."""
    logits = logits_of(model, batch, device, precision)
    return logits, token_loss(logits.flatten(0, 1), batch["labels"].flatten(), o)


def step_tokens(
    micro_batches: list[dict], env: distributed.Env, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """The loss's normaliser: the labelled tokens of a whole optimizer step, over its
    micro-batches and every rank (at least 1; counted on the device, no host synchronisation);
    with class `weights`, the sum of their labels' weights (1 when there is none)."""
    if weights is None:
        mine = sum((b["labels"] != IGNORE).sum() for b in micro_batches)
        return distributed.all_reduce_sum(mine, env).clamp(min=1)
    labels = [b["labels"] for b in micro_batches]
    mine = sum(torch.where(y != IGNORE, weights[y.clamp(min=0)], 0).sum() for y in labels)
    total = distributed.all_reduce_sum(mine, env)
    return torch.where(total > 0, total, 1)


class Diverged(UserError):
    """The loss became NaN or infinite."""


class LossTracker:
    """Device-side sums of the training loss; read at logs, checkpoints and epoch ends only.

    Loss sums are this rank's; counts of labelled tokens (the steps' normalisers: with class
    weights, `weighted`, their summed weights) are already global (summed over ranks by the
    loop), so a global mean is all_reduce(sum) / count.
    """

    def __init__(self, device: torch.device, weighted: bool = False):
        count = torch.float64 if weighted else torch.long
        self.bad_step = torch.full((), -1, dtype=torch.long, device=device)  # first non-finite
        self.window = torch.zeros((), dtype=torch.float64, device=device)  # since the last log
        self.window_count = torch.zeros((), dtype=count, device=device)
        self.epoch = torch.zeros((), dtype=torch.float64, device=device)  # since the last fold
        self.epoch_count = torch.zeros((), dtype=count, device=device)

    def add(self, loss_sum: torch.Tensor) -> None:
        """One micro-batch's summed loss."""
        self.window += loss_sum.detach()
        self.epoch += loss_sum.detach()

    def step_done(self, step: int | torch.Tensor, n_tokens: torch.Tensor) -> None:
        """After optimizer step `step` (a number, or a tensor on the device that holds it):
        count its global labelled tokens, note a non-finite loss. In place, so that a CUDA graph
        that holds a step updates these very tensors (ner/step_graphs.py)."""
        self.window_count += n_tokens
        self.epoch_count += n_tokens
        finite = torch.isfinite(self.window) | (self.bad_step >= 0)
        self.bad_step.copy_(torch.where(finite, self.bad_step, step))

    def check_finite(self, epoch: int, env: distributed.Env) -> None:
        """Stop (before any checkpoint is written) if a step's loss was not finite on any rank."""
        step = int(distributed.all_reduce_max(self.bad_step.clone(), env))
        if step >= 0:
            raise Diverged(
                f"training diverged: non-finite loss at optimizer step {step} (epoch {epoch + 1}); "
                "the last checkpoint, from before that step, is kept; lower optim.lr or check the data"
            )

    def window_mean(self, progress, env: distributed.Env) -> float:
        """The mean loss since the last log (a collective), and start a new window. The window
        can span a checkpoint: what it held then is in the progress (`fold_into`), so a resumed
        run logs the mean of the same steps as a run never stopped."""
        self.fold_into(progress, env)
        mean = progress.window_loss_sum / max(progress.window_loss_count, 1)
        progress.window_loss_sum, progress.window_loss_count = 0.0, 0
        return mean

    def epoch_mean(self, progress, env: distributed.Env) -> float:
        """The mean loss of the epoch (a collective, at its end), and start the next one's."""
        self.fold_into(progress, env)
        mean = progress.epoch_loss_sum / max(progress.epoch_loss_count, 1)
        progress.epoch_loss_sum, progress.epoch_loss_count = 0.0, 0
        return mean

    def fold_into(self, progress, env: distributed.Env) -> None:
        """Add the loss (summed over ranks) and token counts since the last fold to the
        progress's epoch and logging-window sums, which checkpoints save (collectives). A loss
        that was not finite stops the run first (`check_finite`): it is never folded in."""
        self.check_finite(progress.epoch, env)
        sums = distributed.all_reduce_sum(torch.stack([self.epoch, self.window]), env).tolist()
        progress.epoch_loss_sum += sums[0]
        progress.epoch_loss_count += self.epoch_count.item()  # an int, unless weighted
        progress.window_loss_sum += sums[1]
        progress.window_loss_count += self.window_count.item()
        for total in (self.epoch, self.epoch_count, self.window, self.window_count):
            total.zero_()
