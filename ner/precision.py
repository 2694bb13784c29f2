"""trainer.precision, in one place: the autocast of the forward pass and the grad scaler.

fp32 runs without autocast; bf16 autocasts on CUDA and on the CPU; fp16 autocasts on CUDA and
adds a grad scaler (its small gradients would underflow). Weights, optimizer and loss stay fp32
(the loss is computed on float32 logits, ner/loss.py). Training refuses fp16 on the CPU
(ner/run/checks.py); an fp16 run's model evaluated on the CPU later computes in fp32.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch


def autocast(device: torch.device, precision: str):
    """The context of the forward pass of training and evaluation under trainer.precision."""
    if str(precision) == "fp32" or (str(precision) == "fp16" and device.type != "cuda"):
        return nullcontext()
    dtype = torch.bfloat16 if str(precision) == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """The loss scaler of an fp16 run on CUDA; a disabled one (scale 1, a no-op) otherwise."""
    fp16 = precision == "fp16" and device.type == "cuda"
    return torch.amp.GradScaler(device.type, enabled=fp16)
