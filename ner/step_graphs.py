"""The optimizer step, and evaluation's forward pass, replayed from CUDA graphs
(trainer.step_graphs).

Why: at the reference card's batch 3, an eager step of xlm-roberta-base launches about a
thousand small kernels, and the GPU spends the step waiting for the host to launch them (on one
H200: 24 ms a step, where the same step replayed from one CUDA graph takes 9-11 ms:
../shared/gpu/step_floor.py). A CUDA graph records the kernels of one step once; replaying it is
one launch.

What a graph holds: the loop's own step on the device, `TrainingRun.step_on_device` in
ner/train.py (forward, loss, backward, the loss bookkeeping, then `TrainState.update_weights`:
clipping, the fused AdamW update, clearing the gradients), for one batch shape. With length
buckets (trainer.length_buckets) a run has a few shapes, so a few graphs. The schedule and the
step count stay on the host (`TrainState.advance`, after the replay).

How a shape's steps run: its first step runs eagerly, on a side stream (it allocates the
optimizer state and lets cuBLAS and autograd set up what capture cannot); its second is captured
and then replayed (a capture records kernels, it computes nothing); every later one copies its
batch into the graph's input buffers and replays. Each step is computed once, by the same kernels
whether eager or replayed, so a run's numbers do not depend on which of its steps ran from a
graph: a resumed attempt, which captures its graphs again, goes on as the run never stopped. One
exception, to float rounding: outside a capture, transformers drops the attention mask of a
batch without any padding (its SDPA then takes another kernel), which it cannot decide inside
one; with length buckets a batch whose every row fills its bucket is rare.

What reaches a graph as memory, not as a Python number: the batch (static input buffers, filled
before each replay), the learning rate of every parameter group (a float32 device tensor each,
written from the schedule's float before every step, eager or replayed: the fused AdamW reads
it there, so the checkpointed optimizer and schedule keep their plain floats), and the step's
number (for the loss tracker's note of a non-finite loss). Dropout draws from CUDA's generator,
which every graph registers with: a replay advances it as the eager step would, so the RNG
streams a checkpoint saves are those of the eager loop.

All graphs share one memory pool: nothing a replay leaves behind is read after the next one
(the loss sums and counts go into the loss tracker's tensors, made outside every graph; the
gradients are cleared at the end of the step), so one graph's temporaries can reuse another's.
A capture refuses any host synchronisation inside it (an `.item()`, a branch on a tensor): the
step's promise that it never waits for the host is checked by every capture.

Evaluation's forward pass is graphed the same way (`ForwardGraphs`: per batch shape, the first
eager, the second captured and replayed, the logits in the graph's output buffer until the next
batch), so the run's CUDA graphs are all of this module, and trainer.compile=true only puts the
compiler's kernels (mode default, none of its own graphs) inside them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from types import SimpleNamespace

import torch

from ner import distributed
from ner.errors import UserError


def unserved(trainer_cfg, env: distributed.Env) -> str | None:
    """Why trainer.step_graphs cannot serve this run, in words; None when it serves (or is off)."""
    if not trainer_cfg.step_graphs:
        return None
    if env.device.type != "cuda":
        return f"CUDA graphs need a CUDA device, this run's is {env.device.type}"
    if env.distributed:
        return f"the gradient all-reduce of {env.world_size} processes is not captured"
    if trainer_cfg.strategy == "fsdp":
        return "fsdp's parameter gathers are not captured"
    if trainer_cfg.grad_accum_steps > 1:
        return "a step of several micro-batches is not captured"
    if str(trainer_cfg.precision) == "fp16":
        return "fp16's grad scaler reads its overflow check on the host"
    if trainer_cfg.gradient_checkpointing:
        return "activation checkpointing's recomputation is not captured"
    return None


def plan_words(trainer_cfg, env: distributed.Env, compile_words: str) -> tuple[bool, str]:
    """(whether the steps run from CUDA graphs, what the run's start line says of how steps and
    evaluation run), from trainer.step_graphs and trainer.compile's words (`compile_words`)."""
    if not trainer_cfg.step_graphs:
        return False, compile_words
    why_not = unserved(trainer_cfg, env)
    if why_not:
        return False, f"{compile_words}; trainer.step_graphs=true does not serve here: {why_not}"
    kernels = "compiled kernels (trainer.compile=true)" if trainer_cfg.compile else "eager kernels"
    return True, (
        "training steps and evaluation forwards: one CUDA graph per batch shape "
        f"(trainer.step_graphs=true), of {kernels}"
    )


@contextmanager
def uncapturable(what: str, shape: tuple):
    """A capture that fails (an operation CUDA graphs cannot hold, a host synchronisation in
    the model's code) stops the run in one line that says how to run without graphs; nothing
    of the failed capture ran (a capture computes nothing), and the run resumes from its last
    checkpoint with trainer.step_graphs=false (an operational key)."""
    try:
        yield
    except RuntimeError as e:
        raise UserError(
            f"trainer.step_graphs: the {what} of batch shape {'x'.join(map(str, shape))} cannot "
            f"be captured in a CUDA graph ({type(e).__name__}: {str(e).splitlines()[0]}); run "
            "the same command with trainer.step_graphs=false"
        ) from e


class StepGraphs:
    """The optimizer step of each batch shape, captured in a CUDA graph and replayed.

    `step_on_device(micro_batches, step_number)` is the loop's step on the device (ner/train.py),
    here given one micro-batch; `optimizer` the one it updates.
    """

    def __init__(
        self,
        step_on_device: Callable[[list[dict], torch.Tensor], None],
        optimizer: torch.optim.Optimizer,
        device: torch.device,
    ):
        self.step_on_device, self.optimizer, self.device = step_on_device, optimizer, device
        # Per shape: its input buffers, and its graph once captured (None until then).
        self.inputs: dict[tuple, dict[str, torch.Tensor]] = {}
        self.graphs: dict[tuple, torch.cuda.CUDAGraph | None] = {}
        self.pool = None  # the graphs' one memory pool, made at the first capture
        self.lrs = [
            torch.zeros((), dtype=torch.float32, device=device) for _ in optimizer.param_groups
        ]
        self.step_number = torch.zeros((), dtype=torch.long, device=device)

    def __call__(self, batch: dict[str, torch.Tensor], step: int) -> None:
        """Optimizer step `step` on `batch` (collated, on the host, pinned)."""
        shape = tuple(batch["input_ids"].shape)
        if shape not in self.inputs:
            self.inputs[shape] = {
                k: torch.empty_like(v, device=self.device) for k, v in batch.items()
            }
        inputs = self.inputs[shape]
        for name, tensor in batch.items():
            inputs[name].copy_(tensor, non_blocking=True)
        # Written before every step, eager or replayed: they are memory the graph reads.
        self.step_number.fill_(step)
        for lr, group in zip(self.lrs, self.optimizer.param_groups, strict=True):
            lr.fill_(group["lr"])
        if shape not in self.graphs:
            self.graphs[shape] = None
            self.eager(inputs)
        elif self.graphs[shape] is None:
            with uncapturable("optimizer step", shape):
                self.graphs[shape] = self.capture(inputs)
            self.graphs[shape].replay()
        else:
            self.graphs[shape].replay()

    def eager(self, inputs: dict[str, torch.Tensor]) -> None:
        """A shape's first step, run eagerly on a side stream (as capture requires of the work
        before it)."""
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), self.lr_tensors():
            self.step_on_device([inputs], self.step_number)
        torch.cuda.current_stream(self.device).wait_stream(side)

    def capture(self, inputs: dict[str, torch.Tensor]) -> torch.cuda.CUDAGraph:
        """The step on `inputs`, recorded (not run)."""
        graph = torch.cuda.CUDAGraph()
        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        with self.lr_tensors(capturable=True), torch.cuda.graph(graph, pool=self.pool):
            self.step_on_device([inputs], self.step_number)
        return graph

    @contextmanager
    def lr_tensors(self, capturable: bool = False):
        """The optimizer's parameter groups with the learning-rate tensors in place of their
        floats (and, for a capture, marked capturable, which the optimizer checks), for one
        step; the floats come back after it, for the schedule and the checkpoints."""
        groups = self.optimizer.param_groups
        saved = [(g["lr"], g["capturable"]) for g in groups]
        for group, lr in zip(groups, self.lrs, strict=True):
            group["lr"], group["capturable"] = lr, capturable or group["capturable"]
        try:
            yield
        finally:
            for group, (lr, was_capturable) in zip(groups, saved, strict=True):
                group["lr"], group["capturable"] = lr, was_capturable


class ForwardGraphs(torch.nn.Module):
    """Evaluation's forward pass of `module` for each batch shape, captured in a CUDA graph and
    replayed (as `StepGraphs` does the step). Called as the model is, `(input_ids=...,
    attention_mask=...)`; its `.logits` are the graph's output buffer, valid until the next call
    (evaluation reads them first: ner/evaluate.py). train()/eval() reach `module`, and the mode,
    gradient and autocast state are part of a graph's key."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module
        self.inputs: dict[tuple, dict[str, torch.Tensor]] = {}
        self.logits: dict[tuple, torch.Tensor] = {}
        self.graphs: dict[tuple, torch.cuda.CUDAGraph | None] = {}
        self.pool = None  # the forward graphs' one memory pool, made at the first capture

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        key = (
            tuple(input_ids.shape),
            self.module.training,
            torch.is_grad_enabled(),
            torch.is_autocast_enabled(input_ids.device.type),
            torch.get_autocast_dtype(input_ids.device.type),
        )
        if key not in self.graphs:  # first: eagerly (the work a capture needs done before it)
            self.graphs[key] = None
            return self.module(input_ids=input_ids, attention_mask=attention_mask)
        if self.graphs[key] is None:
            self.inputs[key] = {
                "input_ids": input_ids.clone(),
                "attention_mask": attention_mask.clone(),
            }
            with uncapturable("evaluation forward", key[0]):
                self.graphs[key], self.logits[key] = self.capture(self.inputs[key])
        else:
            self.inputs[key]["input_ids"].copy_(input_ids, non_blocking=True)
            self.inputs[key]["attention_mask"].copy_(attention_mask, non_blocking=True)
        self.graphs[key].replay()
        return SimpleNamespace(logits=self.logits[key])

    def capture(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        """The forward on `inputs`, recorded (not run): the graph and its logits buffer."""
        graph = torch.cuda.CUDAGraph()
        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        with torch.cuda.graph(graph, pool=self.pool):
            logits = self.module(**inputs).logits
        return graph, logits
