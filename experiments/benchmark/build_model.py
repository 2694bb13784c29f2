"""Build the benchmark's model directory: a small XLM-R-architecture model, random init, seeded.

Both systems of the benchmark (`python -m ner.train` and `trainer_run_ner.py`) load this one
directory (`model.name_or_path=DIR` / `--model DIR`), so they start from identical weights,
classification head included (it is saved with 7 WikiANN labels), and tokenize identically.

    HF_HUB_OFFLINE=1 python experiments/benchmark/build_model.py --out outputs/benchmark/model

Default shape (documented choice): hidden 256, 4 layers, 4 heads, intermediate 1024, a
SentencePiece Unigram vocabulary of 8000 pieces trained on the training sentences, positions for
512 sub-tokens. That is 3.2M parameters in the encoder layers (+2.2M in embeddings): the same
architecture as xlm-roberta-base (post-LN, GELU, learned positions offset by the pad id), about
1/27 of its encoder compute per token, so a WikiANN-he epoch (20000 sentences) trains in a few
minutes on 2 CPU cores while the per-step costs of a loop (data, optimizer, logging) still show.
The vocabulary is kept small on purpose: with XLM-R's 250002 pieces the Adam update of the
embedding matrix (64M parameters at hidden 256) would dominate every CPU step and hide the loop.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[2]
SHARED_WIKIANN = REPO.parent / "shared" / "wikiann"


def default_data() -> tuple[str, str | None]:
    """`../shared/wikiann` (he) next to the repository when present, else the generated demo set."""
    if SHARED_WIKIANN.is_dir():
        return str(SHARED_WIKIANN), "he"
    return "demo", None


def data_config(name: str, config: str | None, max_train: int | None, max_eval: int | None):
    """A `data` config node (ner.config.DataConfig) for `ner.data.corpus.load_corpus`."""
    from omegaconf import OmegaConf

    from ner.config import DataConfig

    return OmegaConf.structured(
        DataConfig(name=name, config=config, max_train_samples=max_train, max_eval_samples=max_eval)
    )


def build(
    out_dir: Path,
    data_name: str,
    data_config_name: str | None,
    hidden: int = 256,
    layers: int = 4,
    heads: int = 4,
    intermediate: int = 1024,
    vocab: int = 8000,
    max_length: int = 512,
    seed: int = 42,
    model_vocab: int | None = None,
) -> Path:
    """Train the tokenizer on the training sentences, build the seeded model, save both.

    `model_vocab`: rows of the embedding table when it is not the tokenizer's `vocab` pieces
    (gpu.py: xlm-roberta-base's 250002, whose update is part of a step's cost; the rows past
    the tokenizer's are never looked up)."""
    from ner.config import ModelConfig
    from ner.data.corpus import load_corpus
    from ner.model import build_model, model_config
    from ner.tokenizer import load_tokenizer, train_tokenizer

    corpus = load_corpus(data_config(data_name, data_config_name, None, None))
    [(_, train)] = corpus.train  # one source
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        train_tokenizer((s.tokens for s in train), vocab, Path(tmp))
        tokenizer = load_tokenizer(tmp)
    # Both systems cut at the same length: ours windows at it, run_ner truncates at it.
    tokenizer.model_max_length = max_length
    shape = ModelConfig(
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        intermediate_size=intermediate,
        vocab_size=vocab,
        max_position_embeddings=max_length + 2,  # XLM-R positions start after the pad id
    )
    architecture = model_config(shape, corpus.labels, tokenizer)
    architecture.vocab_size = model_vocab or architecture.vocab_size
    model = build_model(shape, architecture, seed)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    n_params = sum(p.numel() for p in model.parameters())
    info = {
        "data": corpus.source,
        "train_sentences_for_tokenizer": len(train),
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "intermediate": intermediate,
        "vocab": len(tokenizer),
        "model_vocab": architecture.vocab_size,
        "max_length": max_length,
        "seed": seed,
        "parameters": n_params,
    }
    (out_dir / "benchmark_model.json").write_text(json.dumps(info, indent=1) + "\n")
    return out_dir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--data", default=None, help="data.name (default: ../shared/wikiann or demo)")
    p.add_argument("--data-config", default=None, help="data.config (default: he for WikiANN)")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--intermediate", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--seed", type=int, default=42)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    name, config = (a.data, a.data_config) if a.data else default_data()
    out = build(
        a.out,
        name,
        config,
        a.hidden,
        a.layers,
        a.heads,
        a.intermediate,
        a.vocab,
        a.max_length,
        a.seed,
    )
    print((out / "benchmark_model.json").read_text(), end="", file=sys.stdout)


if __name__ == "__main__":
    main()
