"""What the model's training state holds per rank, estimated before the model is allocated, and
the one-line refusal when it cannot fit trainer.device_memory_gib.

The estimate is counted from the model's parameters (a `skeleton` built on the meta device: the
architecture with model.freeze_* applied and no storage, so XXL is counted in a second without
its 43 GB of weights) and the config. In bytes per rank, N parameters of which T trainable
(model.freeze_* leave the rest without gradient or optimizer state), W ranks:

- parameters: fp32, 4 N; under fsdp each rank holds its shard of every parameter (FSDP2 splits
  dim 0, ceil(rows / W) rows on the largest shard), about 4 N / W.
- gradients: fp32, 4 T (fsdp: the shard, about 4 T / W).
- optimizer state: AdamW's two fp32 moments (exp_avg, exp_avg_sq), 8 T (fsdp: about 8 T / W).
- under ddp on several ranks, DDP's gradient buckets: a second fp32 copy of the gradients, 4 T
  (DDP's default; gradient_as_bucket_view would let the gradients live in the buckets).
- under ddp with trainer.precision bf16/fp16, the 2-byte copies autocast makes of the weights of
  every nn.Linear (the embeddings are looked up, not cast), kept for the backward pass.
- under fsdp, the unit being computed gathered whole (FSDP2 units: each encoder layer, and the
  root: embeddings and head): its parameters and its unsharded gradient in the compute dtype
  (2 bytes under bf16, else 4), for the largest unit; the root's is usually that (XLM-R's
  250002 x hidden embedding table).
fsdp on one process trains the model whole, as ddp does (ner/sharding.py), and is counted so.

Not counted: activations (they grow with the batch and the sequence length; see
trainer.gradient_checkpointing), the next unit fsdp prefetches, communication buffers, the
allocator's fragmentation, the CUDA context. The figure is a floor for the device: a run that
needs more than trainer.device_memory_gib by this count cannot fit; one that needs less may still
not (its activations), which the refusal's line does not promise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ner.errors import UserError
from ner.model import build_model, encoder_layers

GIB = 2**30
FP32 = 4
MOMENTS = 2  # AdamW (ner/optimization.py): exp_avg and exp_avg_sq, fp32 like the parameters


@dataclass(frozen=True)
class Estimate:
    """Bytes per rank of one run's model state; `parts` in the order they are printed."""

    strategy: str
    world_size: int
    precision: str
    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def line(self) -> str:
        """The line the run prints at start."""
        parts = ", ".join(f"{name} {gib(b)}" for name, b in self.parts.items() if b)
        return (
            f"memory per rank ({self.strategy}, {self.world_size} rank"
            f"{'s' if self.world_size > 1 else ''}, {self.precision}; activations not counted): "
            f"{parts} = {gib(self.total)}"
        )


def gib(n_bytes: float) -> str:
    """A size as people read it: GiB from 1 GiB up, else MiB or KiB."""
    for unit, scale in (("GiB", GIB), ("MiB", 2**20)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.2f} {unit}"
    return f"{n_bytes / 2**10:.2f} KiB"


def skeleton(model_cfg, architecture) -> torch.nn.Module:
    """The run's model on the meta device (no storage, no weights read): its parameters' shapes,
    units and model.freeze_* as the real model has them. The run's random streams stay as they
    are (build_model seeds)."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        return build_model(model_cfg, architecture, seed=0, pretrained=False)


def _shard(p: torch.Tensor, world_size: int) -> int:
    """Elements of the largest FSDP2 shard of `p` (dim 0 split in ceil(rows / W) rows)."""
    if p.dim() == 0:
        return 1
    return math.ceil(p.shape[0] / world_size) * (p.numel() // p.shape[0])


def _units(model: torch.nn.Module) -> list[list[torch.nn.Parameter]]:
    """The parameters of each FSDP2 unit: every encoder layer, then the root (the rest)."""
    layers = [list(layer.parameters()) for layer in encoder_layers(model, "trainer.strategy")]
    in_layers = {id(p) for unit in layers for p in unit}
    return [*layers, [p for p in model.parameters() if id(p) not in in_layers]]


def estimate(model: torch.nn.Module, strategy: str, world_size: int, precision: str) -> Estimate:
    """Bytes per rank of `model`'s parameters, gradients and optimizer state (and the copies the
    strategy and precision add; module docstring) trained on `world_size` ranks."""
    strategy, precision = str(strategy), str(precision)
    compute = FP32 if precision == "fp32" else 2
    params = list(model.parameters())
    sharded = strategy == "fsdp" and world_size > 1  # one process: trained whole (ner/sharding.py)
    if sharded:
        held = sum(_shard(p, world_size) for p in params)
        trained = sum(_shard(p, world_size) for p in params if p.requires_grad)
    else:
        held = sum(p.numel() for p in params)
        trained = sum(p.numel() for p in params if p.requires_grad)
    parts = {
        "parameters": FP32 * held,
        "gradients": FP32 * trained,
        "optimizer state": FP32 * MOMENTS * trained,
    }
    if sharded:
        unit = max(sum(p.numel() * (2 if p.requires_grad else 1) for p in u) for u in _units(model))
        parts["gathered unit"] = compute * unit
    else:
        parts["DDP buckets"] = FP32 * trained if world_size > 1 else 0
        linear = sum(
            p.numel()
            for m in model.modules()
            if isinstance(m, torch.nn.Linear)
            for p in m.parameters(recurse=False)
        )
        parts["autocast weights"] = compute * linear if precision != "fp32" else 0
    return Estimate(strategy, world_size, precision, parts)


def check(cfg, architecture, world_size: int) -> str:
    """The start-of-run line of the run's estimate; refuses in one line a run whose estimate
    exceeds trainer.device_memory_gib (null: no check), naming what fsdp would need instead."""
    t = cfg.trainer
    model = skeleton(cfg.model, architecture)
    need = estimate(model, t.strategy, world_size, t.precision)
    limit = t.device_memory_gib
    if limit is not None and need.total > limit * GIB:
        hint = "add ranks under fsdp, freeze layers (model.freeze_layers) or use a larger device"
        if str(t.strategy) == "ddp":
            alt = estimate(model, "fsdp", world_size, t.precision).total
            fits = "fits" if alt <= limit * GIB else "does not fit either"
            hint = f"trainer.strategy=fsdp needs {gib(alt)} ({fits})" + (
                "" if alt <= limit * GIB else f"; {hint}"
            )
        raise UserError(
            f"config: trainer.device_memory_gib={limit}: the model's state needs {gib(need.total)} "
            f"per rank under {t.strategy} on {world_size} rank(s) before activations "
            f"({need.line().split(': ', 1)[1]}); {hint}"
        )
    return need.line()
