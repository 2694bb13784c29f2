"""Tokenize once: encoded features cached on disk, keyed by everything they depend on.

The key hashes the sentences and tags, the label list, the tokenizer (its full serialized
pipeline), the window length and stride, and FEATURES_VERSION (bump it when the encoding code
changes what it produces). The first process of each node (local rank 0) encodes and writes the
file atomically; the other ranks wait at a barrier and read it. A sweep's later jobs, and resumed
runs, read it too. JSON, not pickle: reading a cache file runs no code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from ner import atomic, distributed
from ner.features import FeatureStats

FEATURES_VERSION = 1


def cache_key(sentences, tags, labels, tokenizer, max_length: int, stride: int) -> str:
    h = hashlib.sha256()
    for part in (
        FEATURES_VERSION,
        labels,
        max_length,
        stride,
        tokenizer.backend_tokenizer.to_str(),
    ):
        h.update(json.dumps(part, ensure_ascii=False).encode())
    for words, word_tags in zip(sentences, tags, strict=True):
        h.update(json.dumps([words, word_tags], ensure_ascii=False).encode())
    return h.hexdigest()[:32]


def cached_features(
    cache_dir: str | None,
    key: str,
    build: Callable[[], tuple[list[dict], FeatureStats]],
    env: distributed.Env,
) -> tuple[list[dict], FeatureStats]:
    """`build()` once per node (or always, when cache_dir is null), else read the cached result."""
    if cache_dir is None:
        return build()
    path = Path(cache_dir).expanduser() / f"{key}.json"
    built = None
    if env.is_local_main and not path.exists():
        built = build()
        features, stats = built
        atomic.write_text(
            path, json.dumps({"features": features, "stats": asdict(stats)}), "feature cache"
        )
    distributed.barrier(env)
    if built is not None:
        return built
    cached = json.loads(path.read_text(encoding="utf-8"))
    return cached["features"], FeatureStats(**cached["stats"])
