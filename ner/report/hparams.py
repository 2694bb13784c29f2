"""The hyperparameters a run reports: one list for the model card and the HParams dashboard.

Each entry reads one value from the config (and the world size) and names it twice: in the model
card's vocabulary (the reference card's wording and order) and on TensorBoard's HParams
dashboard (the short names people sweep over); None leaves it out of that view. A card value of
None (a knob left off: optim.head_lr null) is not listed. A new hyperparameter (say, label
smoothing) is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ner.distributed import Env
from ner.optimization import SCHEDULE, segment


@dataclass(frozen=True)
class Hyperparameter:
    card: str | None
    dashboard: str | None
    value: Callable[[Any, Env], Any]  # (config, env) -> a plain value


def _distributed_type(env: Env) -> str:
    if not env.distributed:
        return "single process"
    return "multi-GPU" if env.device.type == "cuda" else "multi-process (gloo)"


def _optimizer(o) -> str:
    text = f"Adam with betas=({o.betas[0]},{o.betas[1]}) and epsilon={o.eps}"
    decay = f", decoupled weight decay {o.weight_decay} (not on biases and norm weights)"
    return text + (decay if o.weight_decay else "")


def _frozen(m) -> str | None:
    """What model.freeze_* freeze, for the card; None when nothing is frozen."""
    parts = ["embeddings"] if m.freeze_embeddings else []
    if m.freeze_layers:
        n = m.freeze_layers
        parts.append(f"encoder layers 1-{n}" if n > 1 else "encoder layer 1")
    return " and ".join(parts) or None


def _global_batch(c, e: Env) -> int:
    return c.trainer.batch_size * e.world_size * c.trainer.grad_accum_steps


H = Hyperparameter
HYPERPARAMETERS: tuple[Hyperparameter, ...] = (
    H("learning_rate", "lr", lambda c, e: c.optim.lr),
    H("train_batch_size", "batch_size", lambda c, e: c.trainer.batch_size),
    H("eval_batch_size", None, lambda c, e: c.trainer.eval_batch_size),
    H("seed", "seed", lambda c, e: c.seed),
    H("distributed_type", None, lambda c, e: _distributed_type(e)),
    H("num_processes", "world_size", lambda c, e: e.world_size),
    H("gradient_accumulation_steps", None, lambda c, e: c.trainer.grad_accum_steps),
    H("total_train_batch_size", "global_batch", _global_batch),
    H("optimizer", None, lambda c, e: _optimizer(c.optim)),
    H(None, "weight_decay", lambda c, e: c.optim.weight_decay),
    H("head_learning_rate", None, lambda c, e: c.optim.head_lr),
    H(None, "head_lr", lambda c, e: c.optim.lr if c.optim.head_lr is None else c.optim.head_lr),
    H("layer_decay", None, lambda c, e: c.optim.layer_decay),
    H(
        None,
        "layer_decay",
        lambda c, e: 1.0 if c.optim.layer_decay is None else c.optim.layer_decay,
    ),
    H("frozen", None, lambda c, e: _frozen(c.model)),
    H(None, "freeze_embeddings", lambda c, e: c.model.freeze_embeddings),
    H(None, "freeze_layers", lambda c, e: c.model.freeze_layers),
    H("lr_scheduler_type", None, lambda c, e: SCHEDULE),
    H("lr_scheduler_warmup_steps", "warmup_steps", lambda c, e: c.optim.warmup_steps),
    H("num_epochs", "epochs", lambda c, e: c.trainer.epochs),
    H("precision", "precision", lambda c, e: str(c.trainer.precision)),
    H("max_grad_norm", "max_grad_norm", lambda c, e: c.optim.max_grad_norm),
    H(None, "dropout", lambda c, e: -1.0 if c.model.dropout is None else c.model.dropout),
    H(None, "model", lambda c, e: str(c.model.name_or_path or "tiny")),
    H(None, "data", lambda c, e: str(c.data.name or c.data.train_file)),
    H(None, "group_by_length", lambda c, e: c.trainer.group_by_length),
)


def card_hyperparameters(
    cfg, env: Env, schedule: list[list[int]] | None = None, epochs_trained: str | None = None
) -> dict:
    """The card's hyperparameter list, in the reference card's order and wording; a run
    extended with more epochs also says which steps ran under which schedule, and
    `epochs_trained` how many epochs ran and why it stopped there."""
    card = ((h.card, h.value(cfg, env)) for h in HYPERPARAMETERS if h.card)
    out = {name: value for name, value in card if value is not None}
    if epochs_trained is not None:
        at = list(out).index("num_epochs") + 1
        trained = {"epochs_trained": epochs_trained}
        out = dict([*list(out.items())[:at], *trained.items(), *list(out.items())[at:]])
    if len(schedule or []) > 1:
        segments = {"lr_scheduler_segments": schedule_text(schedule)}
        at = list(out).index("lr_scheduler_warmup_steps") + 1
        out = dict([*list(out.items())[:at], *segments.items(), *list(out.items())[at:]])
    return out


def dashboard_hyperparameters(cfg, env: Env) -> dict:
    """What the HParams dashboard lists per run, as plain values."""
    return {h.dashboard: h.value(cfg, env) for h in HYPERPARAMETERS if h.dashboard}


def schedule_text(schedule: list[list[int]]) -> str:
    """Which steps ran under which schedule, when a finished run was extended."""
    parts = []
    for k, (first, total) in enumerate(schedule):
        last = schedule[k + 1][0] if k + 1 < len(schedule) else total
        parts.append(segment(first + 1, last, total))
    return "; ".join(parts)
