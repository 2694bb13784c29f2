"""The optimizer and the learning-rate schedule: change how the model is updated here.

Adam with decoupled weight decay (AdamW; weight_decay 0 is the reference card's plain Adam) and
the schedule `optim.schedule` names, built by transformers' `get_scheduler` (linear, the default:
warm-up from 0 over the warm-up steps, then linear decay to 0 at the last step). Every schedule
of SCHEDULES is a function of the step alone (a LambdaLR: its state is the step count), so a run
extended with more epochs follows the schedule planned for the new total from where it is,
exactly, whichever it is.

The optimizer's parameter groups (`parameter_groups`): no weight decay on biases and
normalisation weights (the Trainer's rule); the head at optim.head_lr; with optim.layer_decay,
encoder layer l of L (1 at the bottom) at lr * layer_decay^(L-l) and the embeddings at
lr * layer_decay^L, one step below the lowest layer (ELECTRA's _get_layer_lrs has these ratios;
it also puts its head two steps above the top layer, where here the head has head_lr, or lr);
frozen parameters (model.freeze_*) are in no group. Parameters of equal settings share a group,
in the model's order, so the defaults make the one group of every parameter that checkpoints
saved before parameter groups existed hold. The schedule scales each group's own peak rate.
"""

from __future__ import annotations

import math

import torch
from transformers import get_scheduler

from ner.errors import UserError
from ner.model import depths

# optim.schedule's values (transformers' lr_scheduler_type), each with the words the card gives
# its steps `first`..`last` of a plan for `total` steps (the arguments of `segment`).
SCHEDULES = {
    "linear": "decay linearly to 0 at step {total}",
    "cosine": "follow a cosine decay to 0 at step {total}",
    "cosine_with_restarts": "follow a cosine decay to 0 at step {total} (one cycle)",
    "polynomial": "decay polynomially (power 1) to a learning rate of 1e-07 at step {total}",
    "constant": "stay at the peak learning rate (no warm-up)",
    "constant_with_warmup": "stay at the peak learning rate after the warm-up",
    "inverse_sqrt": "decay as the inverse square root of the step",
}


def segment(name: str, first: int, last: int, total_steps: int) -> str:
    """Steps `first`..`last` of schedule `name` planned for `total_steps`, in words (the card)."""
    return f"steps {first}-{last} " + SCHEDULES[str(name)].format(total=total_steps)


def warmup_of(optim_cfg, total_steps: int) -> int:
    """The warm-up, in optimizer steps, of a plan for `total_steps`: optim.warmup_ratio of them
    (rounded up, as the Trainer does) when it is set, else optim.warmup_steps; none for the
    constant schedule, which has no warm-up."""
    if str(optim_cfg.schedule) == "constant":
        return 0
    if optim_cfg.warmup_ratio is not None:
        return math.ceil(optim_cfg.warmup_ratio * total_steps)
    return optim_cfg.warmup_steps


def is_norm(module: torch.nn.Module) -> bool:
    """A normalisation layer, by type: torch's (LayerNorm, RMSNorm, GroupNorm, BatchNorm...) or a
    model's own (DebertaLayerNorm, T5LayerNorm: a class named ...Norm)."""
    torch_norms = (torch.nn.LayerNorm, torch.nn.RMSNorm, torch.nn.GroupNorm)
    batch_norm = torch.nn.modules.batchnorm._NormBase
    return isinstance(module, (*torch_norms, batch_norm)) or type(module).__name__.endswith("Norm")


def no_decay(model: torch.nn.Module) -> set[str]:
    """Names of the parameters weight decay leaves alone: every bias and every parameter of a
    normalisation layer (the Trainer's get_decay_parameter_names)."""
    norms = {
        f"{prefix}.{name}" if prefix else name
        for prefix, module in model.named_modules()
        if is_norm(module)
        for name, _ in module.named_parameters(recurse=False)
    }
    return norms | {name for name, _ in model.named_parameters() if name.endswith("bias")}


def parameter_groups(optim_cfg, model: torch.nn.Module) -> list[dict]:
    """AdamW's parameter groups (params, lr, weight_decay) for cfg.optim, trainable parameters
    only; parameters of equal settings share one group, groups and parameters in model order."""
    layer_decay, head_lr = optim_cfg.layer_decay, optim_cfg.head_lr
    place = {}
    if layer_decay is not None or head_lr is not None:
        place = depths(model, "optim.layer_decay" if layer_decay is not None else "optim.head_lr")
    n_layers = getattr(model.config, "num_hidden_layers", 0)
    exempt = no_decay(model)
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue  # frozen (model.freeze_*): no gradient, no optimizer state
        depth = place.get(name, n_layers)
        if depth is None:
            lr = head_lr if head_lr is not None else optim_cfg.lr
        else:
            lr = optim_cfg.lr * (1.0 if layer_decay is None else layer_decay ** (n_layers - depth))
        decay = 0.0 if name in exempt else optim_cfg.weight_decay
        groups.setdefault((lr, decay), []).append(p)
    out = [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]
    grouped = [id(p) for g in out for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable), "every trainable parameter in exactly one group"
    return out


def build_optimizer(optim_cfg, model: torch.nn.Module, device: torch.device):
    # One fused kernel per step instead of a loop over tensors: 5x faster on CPU (benchmark).
    fused = {"fused": True} if device.type in ("cuda", "cpu") else {}
    return torch.optim.AdamW(
        parameter_groups(optim_cfg, model),
        lr=optim_cfg.lr,
        betas=tuple(optim_cfg.betas),
        eps=optim_cfg.eps,
        weight_decay=optim_cfg.weight_decay,
        **fused,
    )


def logged_lr(scheduler, lr: float) -> float:
    """The learning rate the log shows: optim.lr under the schedule now (the rate of the groups
    whose peak is optim.lr; the head's and lower layers' scale with it)."""
    last = scheduler.get_last_lr()
    for base, now in zip(scheduler.base_lrs, last, strict=True):
        if base == lr:
            return now
    return lr * last[0] / scheduler.base_lrs[0]


def check_groups(optimizer, saved: dict, path) -> None:
    """Before a resume loads `saved` (an optimizer state dict): refuse in one line a checkpoint
    whose parameter groups are not this run's (saved before biases and norm weights were exempt
    from a non-zero weight decay)."""
    have = [len(g["params"]) for g in optimizer.param_groups]
    had = [len(g["params"]) for g in saved["param_groups"]]
    if have != had:
        raise UserError(
            f"checkpoint {path}: its optimizer holds parameter groups of {had} parameters, this "
            f"run's of {have} (saved by a version that grouped them otherwise, e.g. with weight "
            "decay on biases and norm weights): resume it with that version, or start a new run"
        )


def build_schedule(optimizer, optim_cfg, total_steps: int):
    """optim.schedule over `total_steps` optimizer steps, with its warm-up (`warmup_of`)."""
    warmup = warmup_of(optim_cfg, total_steps)
    return get_scheduler(str(optim_cfg.schedule), optimizer, warmup, total_steps)


def extend_schedule(
    schedule: list[list[int]], scheduler, step: int, total_steps: int, name
) -> str | None:
    """On a resume at `step`: a run extended to `total_steps` (a finished run given more epochs)
    follows the schedule `name` planned for the new total from there, and `schedule` (the
    progress's [first step, total] of each) records it. Returns the words for it; None when not
    extended."""
    if schedule[-1][1] != total_steps:
        schedule.append([step, total_steps])
        replan(scheduler, step)
    if schedule[-1][0] == step and len(schedule) > 1:
        return f"steps after {step} follow the {name} schedule planned for {total_steps} steps"
    return None


def replan(scheduler, step: int) -> None:
    """After a resume under another total: set the learning rate the new plan gives `step` (in
    every parameter group of the scheduler's optimizer)."""
    groups = scheduler.optimizer.param_groups
    for group, base_lr, f in zip(groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
        group["lr"] = base_lr * f(step)
