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

`EpochSteps` turns an epoch plan into this rank's optimizer steps, each a list of padded
micro-batches (`Collator`), so the loop iterates over steps and nothing else.

Length buckets (trainer.length_buckets, `bucket_lengths`): the collator pads a batch to the
shortest of a few lengths that holds its longest window, and fills its rows up to the batch size,
so a step's shapes repeat (a CUDA graph or a compiled kernel is recorded once per shape). The
padding is masked (attention 0, label IGNORE), so it changes no number beyond float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from ner.features import IGNORE

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


def epoch_selection(sizes: Sequence[int], alpha: float, seed: int, epoch: int) -> list[int]:
    """The training examples of one epoch, as indices into the sources laid end to end.

    A source with share p = n / N of the N examples gets round(N * p**alpha / sum of q**alpha)
    places in the epoch (largest remainders make them add up to N): alpha 1 keeps every source
    as it is, smaller values up-sample small sources. A source drawn at its own size gives every
    example once, in order; a smaller quota takes a seeded sample, a larger one repeats the
    source and samples the rest. A pure function of (sizes, alpha, seed, epoch): the same on
    every rank and after a resume.
    """
    total = sum(sizes)
    weights = [(n / total) ** alpha if n else 0.0 for n in sizes]
    exact = [total * w / sum(weights) for w in weights]
    quotas = [int(q) for q in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: (quotas[i] - exact[i], i))
    for i in by_remainder[: total - sum(quotas)]:
        quotas[i] += 1
    selected, start = [], 0
    for k, (n, quota) in enumerate(zip(sizes, quotas, strict=True)):
        if quota == n:
            picks = list(range(n))
        else:
            g = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 1_009 + k + 1)
            picks = [i for _ in range(quota // n) for i in range(n)]
            picks += torch.randperm(n, generator=g)[: quota % n].tolist()
        selected += [start + i for i in picks]
        start += n
    return selected


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


BUCKET_FLOOR = 16  # the shortest derived bucket: shorter batches are launch-bound anyway


def bucket_lengths(setting, window: int, device: torch.device) -> tuple[int, ...]:
    """The padded lengths of trainer.length_buckets (ner/config.py) for a model whose windows
    hold `window` sub-tokens, on `device`; () pads each batch to its longest window.

    `window`: 16, 24, 32, 48, 64, 96, 128, ... (each at most 1.5x the one before, multiples of
    8 for tensor cores) below the window, and the window itself: 11 lengths for 512, and a
    batch longer than 16 sub-tokens padded by at most half its length. `auto`: those on CUDA, none on the
    CPU. A list: its lengths below the window, and the window (so every window has a bucket).
    """
    if setting == "auto":
        setting = "window" if device.type == "cuda" else None
    if not setting:  # null or []
        return ()
    if setting == "window":
        lengths, half = [], BUCKET_FLOOR // 2  # 16, 24, 32, 48, ...: x1.5 then x4/3
        while 2 * half < window:
            lengths += [2 * half, 3 * half] if 3 * half < window else [2 * half]
            half *= 2
        return tuple(lengths) + (window,)
    return tuple(sorted({int(n) for n in setting if n < window})) + (window,)


class Collator:
    """Padding: a batch to its longest window (rounded up to a multiple, on GPU), or, with length
    `buckets`, to the shortest bucket that holds it, its rows filled up to `rows`.

    No token_type_ids: a window is one sentence, segment 0, which is what every encoder assumes
    when they are absent (BERT, ELECTRA, RoBERTa, XLM-R, DeBERTa), and what a tokenizer gives.
    """

    def __init__(
        self, pad_id: int, pad_to_multiple_of: int | None = None, buckets: Sequence[int] = ()
    ):
        self.pad_id = pad_id
        self.multiple = pad_to_multiple_of
        self.buckets = tuple(sorted(buckets))

    @classmethod
    def for_device(
        cls, tokenizer, device: torch.device, length_buckets=None, window: int | None = None
    ) -> Collator:
        """The one padding rule: to the longest window, rounded up to 8 on GPU (tensor cores), or
        to trainer.length_buckets (`length_buckets`) for a model of `window` sub-tokens."""
        buckets = bucket_lengths(length_buckets, window, device) if window else ()
        return cls(tokenizer.pad_token_id, 8 if device.type == "cuda" else None, buckets)

    def width(self, longest: int) -> int:
        """The padded length of a batch whose longest window is `longest` sub-tokens."""
        for bucket in self.buckets:
            if bucket >= longest:
                return bucket
        if self.multiple:  # no buckets, or a window longer than the model's (not from features)
            return -(-longest // self.multiple) * self.multiple
        return longest

    def __call__(self, batch: Sequence[dict], rows: int | None = None) -> dict[str, torch.Tensor]:
        """Pad `batch`; with buckets, fill it up to `rows` rows: a filler row is padding whose
        first position alone is attended (a row attending to nothing is NaN in some attention
        kernels, and a NaN activation would reach the gradients through the backward's matmuls),
        every label IGNORE, so it adds nothing to a loss, a gradient or a prediction."""
        width = self.width(max(len(f["input_ids"]) for f in batch))
        n_rows = max(len(batch), rows or 0) if self.buckets else len(batch)
        ids = torch.full((n_rows, width), self.pad_id, dtype=torch.long)
        labels = torch.full((n_rows, width), IGNORE, dtype=torch.long)
        mask = torch.zeros((n_rows, width), dtype=torch.long)
        mask[len(batch) :, 0] = 1
        for row, f in enumerate(batch):
            n = len(f["input_ids"])
            ids[row, :n] = torch.tensor(f["input_ids"])
            labels[row, :n] = torch.tensor(f["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class EpochSteps(Dataset):
    """This rank's optimizer steps of one epoch: item k is step k's micro-batches, collated.

    A rank whose share of a micro-step is empty (the epoch's last, smaller step) gets example 0
    with every label masked: DDP needs every rank to run a backward, and it adds nothing.
    """

    def __init__(self, features: Sequence[dict], plan: list, rank: int, collate: Collator):
        self.features, self.plan, self.rank, self.collate = features, plan, rank, collate
        # A rank's micro-batch size (batch_size, or less when the epoch is shorter than one
        # micro-step): with length buckets every micro-batch is filled up to it.
        self.rows = max(
            (len(share) for step in plan for micro in step for share in micro), default=1
        )

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, step: int) -> list[dict[str, torch.Tensor]]:
        micro_batches = []
        for micro in self.plan[step]:
            share = micro[self.rank]
            batch = self.collate([self.features[i] for i in share or [0]], self.rows)
            if not share:
                batch["labels"].fill_(IGNORE)
            micro_batches.append(batch)
        return micro_batches

    def loader(self, first_step: int, num_workers: int, pin_memory: bool) -> DataLoader:
        """The steps from `first_step` on (a resumed epoch starts inside), in order."""
        return DataLoader(
            self,
            batch_size=None,  # an item is already a whole step
            sampler=range(first_step, len(self)),
            num_workers=num_workers,
            pin_memory=pin_memory,
            generator=torch.Generator(),  # its seed draw must not consume the global (dropout) RNG
        )


def to_device(device: torch.device, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A collated batch on the device (training's and evaluation's); from pinned memory on CUDA
    (the loader pins training batches already: those are not copied again), so the copy does not
    make the host wait."""
    pin = device.type == "cuda"
    return {
        k: (v.pin_memory() if pin else v).to(device, non_blocking=True) for k, v in batch.items()
    }
