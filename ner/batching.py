"""Which examples go into which batch on which rank: a pure function of (seed, epoch).

Training: the epoch's permutation is cut into *global* batches of
`batch_size * world_size * grad_accum_steps` examples (one optimizer step each); a global batch
is cut into micro-steps of `batch_size * world_size`, and a micro-step is dealt to the ranks
(rank r takes its examples r, r + W, ...). So 2 ranks at batch B see, step by step, exactly the
examples 1 rank at batch 2B sees. Every example appears exactly once per epoch: nothing is padded
or dropped, the last step is smaller. A rank whose share of the last micro-step is empty gets an
empty list; the loop feeds it a fully masked batch so that DDP's collectives still line up.

`group_by_length` sorts the permutation by length inside chunks of 50 global batches and then
shuffles the order of the global batches, as the Trainer's `group_by_length` does: batches of
similar lengths, still random, still each example once.

Evaluation: rank r takes examples r, r + W, ... (no padding, no duplicates), sorted by length.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

GROUP_CHUNK = 50  # global batches per length-sorted chunk


def epoch_plan(
    lengths: Sequence[int],
    batch_size: int,
    world_size: int,
    grad_accum_steps: int,
    seed: int,
    epoch: int,
    group_by_length: bool,
) -> list[list[list[list[int]]]]:
    """plan[step][micro][rank] = example indices of that rank's micro-batch, for one epoch."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=g).tolist()
    micro_size = batch_size * world_size
    step_size = micro_size * grad_accum_steps
    steps = [order[i : i + step_size] for i in range(0, len(order), step_size)]
    if group_by_length:
        chunk = step_size * GROUP_CHUNK
        order = [
            i
            for lo in range(0, len(order), chunk)
            for i in sorted(order[lo : lo + chunk], key=lambda i: -lengths[i])
        ]
        steps = [order[i : i + step_size] for i in range(0, len(order), step_size)]
        # The last (smaller) step stays last, so every step but the last has the full size.
        full, last = steps[:-1], steps[-1:]
        if len(steps) and len(steps[-1]) == step_size:
            full, last = steps, []
        shuffled = torch.randperm(len(full), generator=g).tolist()
        steps = [full[i] for i in shuffled] + last
    return [
        [
            [micro[r::world_size] for r in range(world_size)]
            for micro in (step[j : j + micro_size] for j in range(0, len(step), micro_size))
        ]
        for step in steps
    ]


def steps_per_epoch(
    n_examples: int, batch_size: int, world_size: int, grad_accum_steps: int
) -> int:
    step_size = batch_size * world_size * grad_accum_steps
    return -(-n_examples // step_size)


def eval_shard(
    lengths: Sequence[int], batch_size: int, rank: int, world_size: int
) -> list[list[int]]:
    """This rank's evaluation batches: examples rank, rank + W, ..., longest first."""
    mine = sorted(range(rank, len(lengths), world_size), key=lambda i: -lengths[i])
    return [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
