"""trainer.strategy=fsdp: the model sharded with FSDP2, and everything that differs for it.

`shard` wraps each encoder layer (model.py `encoder_layers`, found by structure in any family)
and then the whole model with `torch.distributed.fsdp.fully_shard` on a one-dimensional device
mesh over every rank (torchrun or Slurm, ner/distributed): each rank holds 1/N of every
parameter, its gradient and its AdamW state; a layer's parameters are all-gathered for its
forward and again for its backward, its gradients reduce-scattered (averaged over ranks, as DDP
averages them, so the loop's loss normalisation is the same for both). Under trainer.precision
bf16 the gathered parameters are bf16 and gradients are reduced in fp32 (`MixedPrecisionPolicy`);
fp32 has no policy. Parameter names stay those of the plain model, so the optimizer's groups
(ner/optimization.py), freezing (frozen and trainable parameters may share a group) and the
checkpoint's keys are the same under both strategies. On one process there is nothing to shard:
the model is trained whole, as under ddp.

The rest of this module is what the loop asks of either strategy and answers per model:
`sync_gradients` (no gradient sync on an accumulation micro-batch: DDP's no_sync, FSDP's
set_requires_gradient_sync, and no reshard between micro-batches), `clip_gradients` (the norm of
the whole gradient, every rank's shards), `forward_is_collective` (a sharded forward is a collective, so
evaluation runs as many batches on every rank: ner/evaluate.py), whole model and optimizer
states (gathered onto rank 0: best.pt's weights; loaded from a ddp run's checkpoint, so it
resumes under fsdp; fsdp's own last.pt is sharded: ner/sharded_checkpoint.py), and
`whole_model`, the plain model an export saves.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

from ner.distributed import Env
from ner.model import build_model, encoder_layers

KEY = "trainer.strategy=fsdp"  # names the key in encoder_layers' refusal

# Gathered whole on rank 0 (the others get an empty dict), in host memory: what last.pt holds.
_GATHER = StateDictOptions(full_state_dict=True, cpu_offload=True)
# A whole state given on every rank: each keeps its shard of it.
_SCATTER = StateDictOptions(full_state_dict=True)


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether `model` was sharded by `shard` (its parameters are DTensor shards)."""
    return isinstance(model, FSDPModule)


def described(strategy: str, env: Env) -> str:
    """What the run's start line adds for trainer.strategy (nothing for ddp)."""
    if str(strategy) != "fsdp":
        return ""
    if not env.distributed:
        return "; fsdp on one process: nothing to shard, the model is trained whole"
    return f"; fsdp: parameters, gradients and optimizer state sharded over {env.world_size} ranks"


def policy(precision: str) -> MixedPrecisionPolicy:
    """trainer.precision's FSDP policy: bf16 parameters for compute and fp32 gradient reduction;
    fp32 casts nothing. (fp16 is refused with fsdp: ner/run/checks.py.)"""
    if str(precision) == "bf16":
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()


def shard(model: torch.nn.Module, env: Env, precision: str) -> torch.nn.Module:
    """Shard `model` (on its device) over every rank, in place: each encoder layer, then the
    root (the embeddings and the head); returns it. One process: returned as it is."""
    if not env.distributed:
        return model
    mesh = init_device_mesh(env.device.type, (env.world_size,))
    mp = policy(precision)
    for layer in encoder_layers(model, KEY):
        fully_shard(layer, mesh=mesh, mp_policy=mp)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    # The warning says that an in-place op on the model's output (its logits are a view) would
    # skip the backward all-gather: the loop only reads them (ner/loss.py logits_of: .float()).
    warnings.filterwarnings("ignore", "FSDP2-wrapped module .* returned a view tensor")
    return model


def sync_gradients(model: torch.nn.Module, last: bool, env: Env):
    """The context of a micro-batch's forward and backward: gradients are synchronised over
    ranks only on the step's `last` micro-batch (the others accumulate locally). Sharded, the
    gathered parameters also stay gathered between micro-batches (no reshard after their
    backward, so the next forward gathers nothing); the last one reshards. Until then each rank
    accumulates whole (unsharded) gradients: the memory of accumulation, for fewer collectives."""
    if is_sharded(model):
        model.set_requires_gradient_sync(last)
        model.set_reshard_after_backward(last)
        return nullcontext()
    return nullcontext() if last or not env.distributed else model.no_sync()


def clip_gradients(model: torch.nn.Module, max_norm: float) -> torch.Tensor:
    """Clip the gradient to `max_norm` by its norm over every parameter; returns that norm (a
    plain tensor). Sharded, each rank holds shards of the gradients: the norm is the whole
    gradient's, reduced over ranks (the same on every rank, and equal to a ddp run's)."""
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    return norm.full_tensor() if hasattr(norm, "full_tensor") else norm


def forward_is_collective(model: torch.nn.Module) -> bool:
    """Whether every rank must run as many forward passes as every other (each is a collective)."""
    return is_sharded(model)


def model_state(model: torch.nn.Module) -> dict:
    """The model's state dict as a checkpoint holds it (whole, on rank 0); called on every rank
    (sharded, it gathers)."""
    if not is_sharded(model):
        return model.state_dict()
    return get_model_state_dict(model, options=_GATHER)


def load_model_state(model: torch.nn.Module, state: dict) -> None:
    """Load a checkpoint's (whole) model state dict; every rank holds it."""
    if not is_sharded(model):
        model.load_state_dict(state)
        return
    set_model_state_dict(model, dict(state), options=_SCATTER)  # it replaces the dict's values


def load_optimizer_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> None:
    """Load a checkpoint's (whole) optimizer state dict; every rank holds it."""
    if not is_sharded(model):
        optimizer.load_state_dict(state)
        return
    names = _names(model, optimizer)
    by_name = {
        "state": {names[i]: dict(s) for i, s in state["state"].items()},  # (as above)
        "param_groups": [
            {**g, "params": [names[i] for i in g["params"]]} for g in state["param_groups"]
        ],
    }
    set_optimizer_state_dict(model, optimizer, by_name, options=_SCATTER)


def _names(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The names of the optimizer's parameters, in the order of its groups."""
    name = {id(p): n for n, p in model.named_parameters()}
    return [name[id(p)] for g in optimizer.param_groups for p in g["params"]]


def whole_model(model: torch.nn.Module, model_cfg, weights: dict) -> torch.nn.Module:
    """The model an export saves (rank 0): `model` itself, or for a sharded one a plain twin on
    the CPU (the same architecture and head) holding `weights`, a whole state dict."""
    if not is_sharded(model):
        return model
    twin = build_model(model_cfg, model.config, seed=0, pretrained=False)  # its weights follow
    twin.load_state_dict(weights)
    return twin
