"""What the synthetic-batch benchmarks share (strategies.py; gpu.py names the shapes): the
XLM-R shapes, the model built from one, WikiANN-shaped synthetic batches, a device barrier.

The model is built from `XLMRobertaConfig` (random init, nothing downloaded) with a 7-label
token-classification head; BASE is xlm-roberta-base (vocabulary 250002, hidden 768, 12 layers,
12 heads, intermediate 3072).

Synthetic batches: sentence lengths in sub-tokens (specials included) are drawn from a log-normal
with sigma 0.64 and mean 25: the shape of WikiANN-he's length distribution under a tokenizer
trained on it (median 15, mean 18.4, p90 32 sub-tokens), scaled to XLM-R's mean of ~25
sub-tokens for WikiANN-he's ~8.6 words. About 8.6/25 of the positions carry a label, the rest
-100. Batches are planned like the loop plans them (`ner.batching.epoch_plan`, group_by_length
on or off) and padded to a multiple of 8.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ner.batching import epoch_plan  # noqa: E402

IGNORE = -100
BASE = {"vocab": 250002, "hidden": 768, "layers": 12, "heads": 12, "intermediate": 3072}
TINY = {"vocab": 1000, "hidden": 64, "layers": 2, "heads": 4, "intermediate": 128}
SIGMA = 0.64  # log-normal shape of WikiANN-he's sub-token lengths


def build(shape: dict, device: torch.device, seed: int) -> torch.nn.Module:
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification

    config = XLMRobertaConfig(
        vocab_size=shape["vocab"],
        hidden_size=shape["hidden"],
        num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"],
        intermediate_size=shape["intermediate"],
        max_position_embeddings=514,
        type_vocab_size=1,
        num_labels=7,
    )
    torch.manual_seed(seed)
    return XLMRobertaForTokenClassification(config).to(device)


def sentence_lengths(n: int, mean: float, g: torch.Generator) -> list[int]:
    """Log-normal lengths (specials included) with the given mean, at least one word each."""
    median = mean / math.exp(SIGMA**2 / 2)
    z = torch.randn(n, generator=g)
    lengths = (median * torch.exp(SIGMA * z)).round().clamp(min=3, max=512).long()
    return lengths.tolist()


def make_batches(
    n_batches: int, batch: int, mean_len: float, words: float, vocab: int, group: bool, seed: int
) -> list[dict]:
    """Synthetic batches planned like the loop's (length-grouped), padded to a multiple of 8."""
    g = torch.Generator().manual_seed(seed)
    lengths = sentence_lengths(n_batches * batch, mean_len, g)
    plan = epoch_plan(lengths, batch, 1, 1, seed, 0, group)
    out = []
    for step in plan:
        idx = step[0][0]
        width = -(-max(lengths[i] for i in idx) // 8) * 8
        ids = torch.full((len(idx), width), 1, dtype=torch.long)  # XLM-R's pad id
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        labels = torch.full((len(idx), width), IGNORE, dtype=torch.long)
        for row, i in enumerate(idx):
            n = lengths[i]
            ids[row, :n] = torch.randint(5, vocab, (n,), generator=g)
            mask[row, :n] = 1
            # First sub-tokens of words: `words` of the mean_len - 2 inner positions.
            scored = torch.rand(n - 2, generator=g) < words / (mean_len - 2)
            scored[0] = True
            labels[row, 1 : n - 1] = torch.where(
                scored, torch.randint(0, 7, (n - 2,), generator=g), IGNORE
            )
        out.append(
            {
                "input_ids": ids,
                "attention_mask": mask,
                "labels": labels,
                "lengths": [lengths[i] for i in idx],
            }
        )
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
