"""Everything the loop needs before its first step: data, tokenizer, features, model.

Rank 0 trains the tiny model's tokenizer (once per run directory: a resumed run reuses it) and
every rank loads it from disk, so all ranks tokenize identically. Statistics and repairs are
printed on rank 0 before training starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from ner import distributed
from ner.data import Splits, load_splits
from ner.features import FeatureStats, cache_key, cached_features, encode_split
from ner.model import build_model, model_config, window_length
from ner.sentences import entity_counts
from ner.tokenizer import load_tokenizer, train_tokenizer


@dataclass
class Prepared:
    splits: Splits
    labels: list[str]
    tokenizer: object
    max_length: int
    features: dict[
        str, list[dict]
    ]  # per split: one dict per window (input_ids, labels, example, window)
    gold: dict[str, list[list[str]]]  # per split: gold tags of every word of every sentence
    stats: dict[str, FeatureStats]
    model: torch.nn.Module


def tokenizer_for(model_cfg, splits: Splits, run_dir: Path, env: distributed.Env):
    if model_cfg.name_or_path is not None:
        return load_tokenizer(model_cfg.name_or_path)
    tok_dir = run_dir / "tokenizer"
    if env.is_main and not (tok_dir / "tokenizer.json").exists():
        train_tokenizer(
            (s.tokens for s in splits.sentences["train"]), model_cfg.vocab_size, tok_dir
        )
    distributed.barrier(env)
    return load_tokenizer(tok_dir)


def prepare(cfg, env: distributed.Env, run_dir: Path, say) -> Prepared:
    splits = load_splits(cfg.data)
    tokenizer = tokenizer_for(cfg.model, splits, run_dir, env)
    architecture = model_config(cfg.model, splits.labels, tokenizer)
    max_length = window_length(cfg.model.max_length, tokenizer, architecture)
    label_id = {name: i for i, name in enumerate(splits.labels)}
    features, gold, stats = {}, {}, {}
    say(
        f"data: {splits.source}; labels {', '.join(splits.labels)}; windows of {max_length} sub-tokens"
    )
    for split, sentences in splits.sentences.items():
        tokens = [s.tokens for s in sentences]
        tag_ids = [[label_id[t] for t in s.tags] for s in sentences]
        key = cache_key(
            tokens, tag_ids, splits.labels, tokenizer, max_length, cfg.model.window_stride
        )
        features[split], stats[split] = cached_features(
            cfg.data.cache_dir,
            key,
            partial(encode_split, tokenizer, tokens, tag_ids, max_length, cfg.model.window_stride),
            env,
        )
        gold[split] = [list(s.tags) for s in sentences]
        counts = ", ".join(f"{k} {v}" for k, v in entity_counts(sentences).items())
        for line in [
            *splits.reports[split].lines(),
            *stats[split].lines(split),
            f"{split}: entities {counts}",
        ]:
            say(line)
    model = build_model(cfg.model, architecture, cfg.seed)
    n_params = sum(p.numel() for p in model.parameters())
    say(
        f"model: {cfg.model.name_or_path or 'tiny XLM-R (random init)'}, {n_params / 1e6:.2f}M parameters"
    )
    return Prepared(splits, splits.labels, tokenizer, max_length, features, gold, stats, model)
