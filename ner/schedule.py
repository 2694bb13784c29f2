"""The learning-rate schedule: linear warm-up from 0, then linear decay to 0 at the last step.

The same curve as transformers' `get_linear_schedule_with_warmup`, as a picklable multiplier
for `torch.optim.lr_scheduler.LambdaLR` (the scheduler's state goes into checkpoints).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class linear_schedule:  # noqa: N801 - used like a function: linear_schedule(warmup, total)(step)
    warmup_steps: int
    total_steps: int

    def __call__(self, step: int) -> float:
        """Multiplier of the peak learning rate for the update after `step` updates."""
        if step < self.warmup_steps:
            return step / max(1, self.warmup_steps)
        return max(0.0, (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps))
