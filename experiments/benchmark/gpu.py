"""GPU benchmark: xlm-roberta-base-architecture training steps on WikiANN-shaped synthetic batches.

    HF_HUB_OFFLINE=1 python experiments/benchmark/gpu.py                 # one CUDA device, < 5 min
    HF_HUB_OFFLINE=1 python experiments/benchmark/gpu.py --tiny --device cpu   # CI, seconds
    HF_HUB_OFFLINE=1 python experiments/benchmark/gpu.py --strategies --nproc 2  # fsdp vs ddp

The model is built from `XLMRobertaConfig` (vocabulary 250002, hidden 768, 12 layers, 12 heads,
intermediate 3072; random init, nothing downloaded) with a 7-label token-classification head.
A step is what `ner/train.py` does on one process: bf16 autocast (on CUDA), cross-entropy summed
over the labelled positions / their count, backward, gradient clipping at 1.0, fused AdamW
(on CPU too: torch >= 2.4), `zero_grad(set_to_none=True)`; no host-device synchronisation inside a timed
window.

Synthetic batches: sentence lengths in sub-tokens (specials included) are drawn from a log-normal
with sigma 0.64 and mean 25: the shape of WikiANN-he's length distribution under a tokenizer
trained on it (median 15, mean 18.4, p90 32 sub-tokens), scaled to XLM-R's mean of ~25
sub-tokens for WikiANN-he's ~8.6 words. About 8.6/25 of the positions carry a label, the rest
-100. Batches are planned like the loop plans them (`ner.batching.epoch_plan`,
group_by_length on; `--no-group` for random batches) and padded to a multiple of 8.

Model FLOPs utilisation (MFU) counts only real (non-pad) tokens, with the usual training cost of
3 x forward (forward + backward):
    FLOPs per step = 6 * N * T + 12 * n_layers * d_model * sum_i(len_i ** 2)
where N = non-embedding parameters (encoder layers and head; embeddings are lookups), T = real
tokens in the step, len_i = length of sentence i (the QK^T and AV matmuls: 2 * 2 * len * d per
token and layer forward, x3 for training). MFU = FLOPs per step / step time / peak, with the
peak given by `--peak-flops` (default 989e12: H100/H200 dense bf16).

It reports, per batch size (default 3, the reference card's, and 32): time per optimizer step,
training sentences/s and tokens/s, MFU; then an estimate of the card's 100 epochs at batch 3 on
20000 sentences per epoch (6667 steps per epoch) from the measured step time, plus the time of
the per-epoch evaluation (10000 validation sentences at batch 3, measured forward passes).

`--strategies` runs strategies.py's comparison instead: fsdp against ddp on `--nproc` CUDA
devices (default: all; nccl takes one device per rank, so it needs two or more), bf16, the
xlm-roberta-base shape (`--shape`), ms per step and torch.cuda.max_memory_allocated per rank
beside the start-of-run estimate (ner/memory.py), appended to RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ner.batching import epoch_plan  # noqa: E402

IGNORE = -100
BASE = {"vocab": 250002, "hidden": 768, "layers": 12, "heads": 12, "intermediate": 3072}
TINY = {"vocab": 1000, "hidden": 64, "layers": 2, "heads": 4, "intermediate": 128}
CARD = {"epochs": 100, "train_sentences": 20000, "eval_sentences": 10000, "batch": 3}
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


def non_embedding_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if ".embeddings." not in n)


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


def autocast(device: torch.device, bf16: bool):
    if bf16 and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_steps(model, forward, optimizer, batches, device, bf16: bool) -> float:
    """Run one optimizer step per batch; return the wall seconds (synchronised at both ends)."""
    model.train()
    sync(device)
    start = time.perf_counter()
    for b in batches:
        ids = b["input_ids"].to(device, non_blocking=True)
        mask = b["attention_mask"].to(device, non_blocking=True)
        labels = b["labels"].to(device, non_blocking=True)
        with autocast(device, bf16):
            logits = forward(input_ids=ids, attention_mask=mask).logits
        n = (labels != IGNORE).sum().clamp(min=1)
        loss = F.cross_entropy(
            logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction="sum"
        )
        (loss / n).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync(device)
    return time.perf_counter() - start


@torch.no_grad()
def eval_steps(model, forward, batches, device, bf16: bool) -> float:
    """Forward passes with argmax on the device (what the loop's evaluation does)."""
    model.eval()
    sync(device)
    start = time.perf_counter()
    kept = []
    for b in batches:
        ids = b["input_ids"].to(device, non_blocking=True)
        mask = b["attention_mask"].to(device, non_blocking=True)
        labels = b["labels"].to(device, non_blocking=True)
        with autocast(device, bf16):
            logits = forward(input_ids=ids, attention_mask=mask).logits
        kept.append(logits.argmax(-1)[labels != IGNORE])
    torch.cat(kept).cpu()
    sync(device)
    model.train()
    return time.perf_counter() - start


def measure(a, model, forward, optimizer, device, batch: int, n_params: int) -> dict:
    shape = TINY if a.tiny else BASE
    batches = make_batches(
        a.warmup + a.steps, batch, a.mean_len, a.words, shape["vocab"], not a.no_group, a.seed
    )
    if device.type == "cuda":  # the loop's DataLoader pins memory on CUDA
        batches = [
            {k: v.pin_memory() if torch.is_tensor(v) else v for k, v in b.items()} for b in batches
        ]
    train_steps(model, forward, optimizer, batches[: a.warmup], device, a.bf16)
    timed = batches[a.warmup :]
    seconds = train_steps(model, forward, optimizer, timed, device, a.bf16)
    sentences = sum(len(b["lengths"]) for b in timed)
    tokens = sum(sum(b["lengths"]) for b in timed)
    padded = sum(b["input_ids"].numel() for b in timed)
    flops = sum(
        6 * n_params * sum(b["lengths"])
        + 12 * shape["layers"] * shape["hidden"] * sum(n * n for n in b["lengths"])
        for b in timed
    )
    out = {
        "batch": batch,
        "steps": len(timed),
        "step_ms": 1000 * seconds / len(timed),
        "sentences_per_s": sentences / seconds,
        "tokens_per_s": tokens / seconds,
        "padding_fraction": 1 - tokens / padded,
        "model_tflops_per_s": flops / seconds / 1e12,
    }
    if a.peak_flops:
        out["mfu"] = flops / seconds / a.peak_flops
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--tiny", action="store_true", help="tiny model and few steps (CPU tests)")
    p.add_argument("--batch-sizes", default="3,32", help="comma-separated")
    p.add_argument("--steps", type=int, default=None, help="timed steps per batch size")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per batch size")
    p.add_argument("--eval-batches", type=int, default=None, help="timed eval passes at batch 3")
    p.add_argument("--peak-flops", type=float, default=None, help="default 989e12 on CUDA")
    p.add_argument("--mean-len", type=float, default=25.0, help="sub-tokens per sentence")
    p.add_argument("--words", type=float, default=8.6, help="words (labels) per sentence")
    p.add_argument("--no-bf16", dest="bf16", action="store_false", help="fp32 on CUDA")
    p.add_argument("--no-group", action="store_true", help="random batches, not length-grouped")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (dynamic)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    p.add_argument(
        "--strategies",
        action="store_true",
        help="fsdp against ddp on --nproc CUDA devices instead (strategies.py, nccl)",
    )
    p.add_argument("--nproc", type=int, default=None, help="--strategies: ranks (all GPUs)")
    p.add_argument("--shape", default="base", help="--strategies: tiny, small, base, large")
    a = p.parse_args(argv)
    a.steps = a.steps or (3 if a.tiny else 100)
    a.warmup = a.warmup if a.warmup is not None else (1 if a.tiny else 15)
    a.eval_batches = a.eval_batches or (3 if a.tiny else 300)
    return a


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    if a.strategies:  # the comparison of strategies.py, on this machine's GPUs
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import strategies

        nproc = a.nproc or torch.cuda.device_count()
        return strategies.main(
            [
                "--device=cuda",
                f"--nproc={nproc}",
                f"--shape={'tiny' if a.tiny else a.shape}",
                f"--precision={'bf16' if a.bf16 else 'fp32'}",
                f"--steps={a.steps}",
                f"--warmup={a.warmup}",
                f"--seed={a.seed}",
            ]
        )
    if a.device == "auto":
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(a.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        a.peak_flops = a.peak_flops or 989e12
    shape = TINY if a.tiny else BASE
    model = build(shape, device, a.seed)
    forward = torch.compile(model, dynamic=True) if a.compile else model
    n_params = non_embedding_params(model)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=2e-5,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        fused=True,  # CUDA, and CPU since torch 2.4
    )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device {name}; model {shape} ({n_params / 1e6:.1f}M non-embedding, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M total parameters); "
        f"{'bf16 autocast' if a.bf16 and device.type == 'cuda' else 'fp32'}; "
        f"{a.warmup} warm-up + {a.steps} timed steps per batch size",
        flush=True,
    )
    results = []
    for batch in [int(b) for b in a.batch_sizes.split(",") if b]:
        r = measure(a, model, forward, optimizer, device, batch, n_params)
        results.append(r)
        mfu = f", MFU {100 * r['mfu']:.1f}%" if "mfu" in r else ""
        print(
            f"batch {batch:>4}: {r['step_ms']:8.2f} ms/step, {r['sentences_per_s']:9.1f} "
            f"sentences/s, {r['tokens_per_s']:10.0f} tokens/s, "
            f"{r['model_tflops_per_s']:7.2f} model TFLOP/s{mfu}",
            flush=True,
        )
    eval_batches = make_batches(
        a.eval_batches, CARD["batch"], a.mean_len, a.words, shape["vocab"], True, a.seed + 1
    )  # length-grouped, close to the loop's length-sorted evaluation batches
    eval_steps(model, forward, eval_batches[:2], device, a.bf16)  # warm-up
    eval_s = eval_steps(model, forward, eval_batches, device, a.bf16) / len(eval_batches)
    report = {"device": name, "shape": shape, "non_embedding_params": n_params, "train": results}
    card = [r for r in results if r["batch"] == CARD["batch"]]
    steps = CARD["epochs"] * math.ceil(CARD["train_sentences"] / CARD["batch"])
    evals = CARD["epochs"] * math.ceil(CARD["eval_sentences"] / CARD["batch"])
    report["eval_step_ms_batch3"] = 1000 * eval_s
    if card:
        train_h = steps * card[0]["step_ms"] / 1000 / 3600
        eval_h = evals * eval_s / 3600
        report["card_estimate_hours"] = {
            "train": train_h,
            "eval": eval_h,
            "total": train_h + eval_h,
        }
        print(
            f"the card's {CARD['epochs']} epochs at batch {CARD['batch']} ({steps} steps, "
            f"{evals} eval batches of {eval_s * 1000:.2f} ms): training {train_h:.2f} h + "
            f"evaluation {eval_h:.2f} h = {train_h + eval_h:.2f} h"
        )
    if device.type == "cuda":
        report["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    if a.out:
        a.out.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
