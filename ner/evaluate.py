"""Exact distributed evaluation: every example once, metrics computed over the whole split.

Each rank evaluates its shard (examples rank, rank + W, ...; no padding, no duplicates) with the
*unwrapped* model (no DDP collectives, so uneven batch counts are fine), takes the argmax on the
device and keeps it there, in one buffer for the whole shard, copied to the host once at the end:
no batch waits for the host (no per-batch transfer, `.item()` or boolean indexing, whose size the
host must read), and with length buckets (trainer.length_buckets, ner/batching.py) every batch
has one of a few shapes. The host keeps the ids at labelled positions, which it knows from the
features. A model sharded by FSDP
(ner/sharding.py) gathers each layer's parameters in its forward, a collective: then every rank
runs as many forward passes as rank 0, which has the most batches, the missing ones on a stand-in
batch (the split's first window) whose output is dropped, so no example counts twice. The shards are gathered with
their feature indices, reassembled into one prediction per word in dataset order, and scored
once, identically on every rank. The loss is summed and counted over all labelled positions of
all ranks, so it is the per-word mean over the split whatever the number of ranks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from ner.batching import Collator, eval_shard, to_device
from ner.distributed import Env, all_gather_objects, all_reduce_sum
from ner.features import IGNORE, gather_word_predictions
from ner.loss import logits_of, token_loss
from ner.metrics import entity_metrics, mean_over_sets
from ner.sharding import forward_is_collective


@torch.no_grad()
def predict_features(
    model: torch.nn.Module,
    features: Sequence[dict],
    batch_size: int,
    collator: Collator,
    env: Env,
    precision: str = "fp32",
) -> tuple[list[list[int]], float, int]:
    """Predicted ids at the labelled positions of every feature (on every rank), loss sum, count."""
    was_training = model.training
    model.eval()
    lengths = [len(f["input_ids"]) for f in features]
    shard = eval_shard(lengths, batch_size, env.rank, env.world_size)
    mine = [i for idx in shard for i in idx]
    width = max((lengths[i] for i in mine), default=0)
    # Row k: the predicted ids of feature mine[k], written on the device batch by batch.
    predicted = torch.zeros((len(mine), width), dtype=torch.int32, device=env.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=env.device)
    n_labels = torch.zeros((), dtype=torch.long, device=env.device)
    row = 0
    for idx in shard:
        batch = to_device(env.device, collator([features[i] for i in idx], batch_size))
        labels = batch["labels"]
        torch.compiler.cudagraph_mark_step_begin()  # the last batch's outputs are consumed
        logits = logits_of(model, batch, env.device, precision)
        # Every position but the labelled ones is IGNORE (filler rows and padding included).
        loss_sum += token_loss(logits.flatten(0, 1), labels.flatten()).double()
        n_labels += (labels != IGNORE).sum()
        cols = min(logits.shape[1], width)
        predicted[row : row + len(idx), :cols] = logits[: len(idx), :cols].argmax(-1)
        row += len(idx)
    # As many forward passes (collectives) as rank 0's.
    if forward_is_collective(model) and features:
        stand_in = to_device(env.device, collator([features[0]], batch_size))
        for _ in range(len(eval_shard(lengths, batch_size, 0, env.world_size)) - len(shard)):
            logits_of(model, stand_in, env.device, precision)
    host = predicted.cpu().numpy()  # the shard's one transfer
    per_feature = {}
    for k, i in enumerate(mine):
        labelled = np.asarray(features[i]["labels"]) != IGNORE
        per_feature[i] = host[k, : len(labelled)][labelled].tolist()
    model.train(was_training)

    gathered: dict[int, list[int]] = {}
    for part in all_gather_objects(per_feature, env):
        gathered.update(part)
    assert len(gathered) == len(features), f"gathered {len(gathered)} of {len(features)} features"
    totals = torch.stack([loss_sum, n_labels.double()])
    all_reduce_sum(totals, env)
    return [gathered[i] for i in range(len(features))], float(totals[0]), int(totals[1])


def evaluate(
    model: torch.nn.Module,
    features: Sequence[dict],
    gold: Sequence[Sequence[str]],
    labels: list[str],
    batch_size: int,
    collator: Collator,
    env: Env,
    precision: str = "fp32",
) -> dict:
    """The metrics of ner.metrics.METRICS and per-type results over every word of `gold`."""
    start = time.perf_counter()
    preds, loss_sum, n = predict_features(model, features, batch_size, collator, env, precision)
    words = gather_word_predictions(features, preds, len(gold))
    pred_tags = [[labels[i] for i in sent] for sent in words]
    for k, (g, p) in enumerate(zip(gold, pred_tags, strict=True)):
        assert len(g) == len(p), f"example {k}: {len(g)} words but {len(p)} predictions"
    metrics = entity_metrics(gold, pred_tags)  # every metric of ner.metrics.METRICS but the loss
    runtime = time.perf_counter() - start
    return {
        "loss": loss_sum / max(n, 1),
        **metrics,
        "runtime": runtime,
        "samples_per_second": len(gold) / runtime if runtime > 0 else 0.0,
        "predictions": pred_tags,
    }


def training_mean(results: dict[str, dict], training: list[str]) -> dict:
    """The eval_training_* entries of an evaluation of several sets (`results` by set name), of
    which several but not all are of the training languages (`training`): their mean metrics,
    what the default trainer.monitor selects on. Empty otherwise."""
    if not 1 < len(training) < len(results):
        return {}
    mean = mean_over_sets({name: results[name] for name in training})
    return {f"eval_training_{k}": v for k, v in mean.items()}
