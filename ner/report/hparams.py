"""The hyperparameters a run reports: one list for the model card and the HParams dashboard.

Each entry reads one value from the config (and the world size) and names it twice: in the model
card's vocabulary (the reference card's wording and order) and on TensorBoard's HParams
dashboard (the short names people sweep over); a name None leaves it out of that view. The card
leaves out a value of None and one equal to the entry's `omit` (as the Trainer's card leaves out
a label smoothing of 0), so a run with the defaults has the reference card's list; the dashboard
lists every value but None. A new hyperparameter is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf

from ner.config import fields
from ner.distributed import Env
from ner.naming import model_name
from ner.optimization import segment


@dataclass(frozen=True)
class Hyperparameter:
    card: str | None
    dashboard: str | None
    value: Callable[[Any, Env], Any]  # (config, env) -> a plain value, or None
    omit: Any = None  # a value the card leaves out


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


def _warmup_steps(o) -> int | None:
    """optim.warmup_steps when it is the warm-up that ran (not replaced by warmup_ratio)."""
    if str(o.schedule) == "constant":
        return 0
    return o.warmup_steps if o.warmup_ratio is None else None


def _class_weights(w) -> str | None:
    """optim.class_weights as text: inverse_frequency, or the list; None when null."""
    return None if w is None else w if isinstance(w, str) else str(list(w))


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
    H("distributed_strategy", "strategy", lambda c, e: str(c.trainer.strategy), "ddp"),
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
    H("lr_scheduler_type", "schedule", lambda c, e: str(c.optim.schedule)),
    H("lr_scheduler_warmup_steps", "warmup_steps", lambda c, e: _warmup_steps(c.optim)),
    H("lr_scheduler_warmup_ratio", "warmup_ratio", lambda c, e: c.optim.warmup_ratio),
    H("num_epochs", "epochs", lambda c, e: c.trainer.epochs),
    H("precision", "precision", lambda c, e: str(c.trainer.precision)),
    H(
        "gradient_checkpointing",
        "gradient_checkpointing",
        lambda c, e: c.trainer.gradient_checkpointing,
        False,
    ),
    H("max_grad_norm", "max_grad_norm", lambda c, e: c.optim.max_grad_norm),
    H("label_smoothing_factor", "label_smoothing", lambda c, e: c.optim.label_smoothing, 0.0),
    H("class_weights", "class_weights", lambda c, e: _class_weights(c.optim.class_weights)),
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
    values = {h.card: (h.value(cfg, env), h.omit) for h in HYPERPARAMETERS if h.card}
    out = {k: v for k, (v, omit) in values.items() if v is not None and v != omit}
    if epochs_trained is not None:
        at = list(out).index("num_epochs") + 1
        trained = {"epochs_trained": epochs_trained}
        out = dict([*list(out.items())[:at], *trained.items(), *list(out.items())[at:]])
    if len(schedule or []) > 1:
        segments = {"lr_scheduler_segments": schedule_text(cfg.optim.schedule, schedule)}
        warmup = ("lr_scheduler_warmup_steps", "lr_scheduler_warmup_ratio")
        at = max(i for i, k in enumerate(out) if k == "lr_scheduler_type" or k in warmup) + 1
        out = dict([*list(out.items())[:at], *segments.items(), *list(out.items())[at:]])
    return out


def dashboard_hyperparameters(cfg, env: Env) -> dict:
    """What the HParams dashboard lists per run, as plain values (None: not listed)."""
    values = {h.dashboard: h.value(cfg, env) for h in HYPERPARAMETERS if h.dashboard}
    return {k: v for k, v in values.items() if v is not None}


def schedule_text(name: str, schedule: list[list[int]]) -> str:
    """Which steps ran under which plan of schedule `name`, when a finished run was extended."""
    parts = []
    for k, (first, total) in enumerate(schedule):
        last = schedule[k + 1][0] if k + 1 < len(schedule) else total
        parts.append(segment(name, first + 1, last, total))
    return "; ".join(parts)


def recipe_summary(cfg: Any) -> str:
    """The recipe a run trains with, printed at start: whose defaults, which keys its model group
    sets for that model (conf/model/xlmr_large.yaml: ner_model_recipe), and which keys the
    experiment or the command line set instead."""
    kind = "tiny" if cfg.model.name_or_path is None else "pretrained"
    model = model_name(cfg.model.name_or_path) if kind == "pretrained" else None
    unresolved = OmegaConf.to_container(cfg, resolve=False)
    own, grouped, changed = [], [], []
    for name, f in fields():
        if "recipe" in f.metadata:
            value = OmegaConf.select(cfg, name)
            raw = unresolved[name.split(".")[0]][name.split(".")[1]]
            if isinstance(raw, str) and raw.startswith(f"${{ner_model_recipe:{model},"):
                grouped.append(f"{name}={value}")
            else:
                (own if value == f.metadata["recipe"][kind] else changed).append(f"{name}={value}")
    whose = {
        "tiny": "the tiny random-init model's (model.name_or_path=null)",
        "pretrained": f"a pretrained encoder's (model.name_or_path={cfg.model.name_or_path})",
    }[kind]
    said = [" ".join(own)] if own or not grouped else []  # "(none of its values)" below
    said += [f"its model group's for {model}: {' '.join(grouped)}"] if grouped else []
    text = f"recipe: {whose}: {'; '.join(said) or '(none of its values)'}"
    text += f"; set by the experiment or command line: {' '.join(changed)}" if changed else ""
    ratio = cfg.optim.warmup_ratio
    return text + (
        f"; optim.warmup_ratio={ratio} replaces optim.warmup_steps" if ratio is not None else ""
    )
