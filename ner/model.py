"""XLM-R encoder with a token-classification head: from a hub name, a directory, or a config.

`model.name_or_path` null builds the tiny model of the demo and the tests: an XLM-R-architecture
model with random (seeded) weights, and a SentencePiece Unigram tokenizer trained with the
`tokenizers` library on the training sentences, with XLM-R's special tokens.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
    XLMRobertaConfig,
    XLMRobertaForTokenClassification,
)

from ner.errors import UserError

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids 0, 1, 2, 3, last


def train_tokenizer(words: Iterable[Sequence[str]], vocab_size: int, out_dir: Path) -> None:
    """Train a SentencePiece Unigram tokenizer on sentences of words and save it (HF format)."""
    from tokenizers import Tokenizer
    from tokenizers.implementations import SentencePieceUnigramTokenizer
    from transformers import XLMRobertaTokenizerFast

    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(
        (" ".join(s) for s in words),
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS[:4],
        unk_token="<unk>",
        show_progress=False,
    )
    sp.add_special_tokens(["<mask>"])
    # The trainer sums piece scores in parallel threads, so their last digits, and the order of
    # pieces with equal scores, vary run to run. Rounded and sorted (specials first, as trained),
    # the same sentences give the same tokenizer file, ids and segmentation every time.
    spec = json.loads(sp.to_str())
    vocab = spec["model"]["vocab"]
    n_special = len(SPECIAL_TOKENS) - 1
    pieces = sorted(([p, round(s, 6)] for p, s in vocab[n_special:]), key=lambda v: (-v[1], v[0]))
    spec["model"]["vocab"] = vocab[:n_special] + pieces
    tok = XLMRobertaTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )
    tok.save_pretrained(str(out_dir))


def load_tokenizer(name_or_path: str | Path) -> PreTrainedTokenizerBase:
    try:
        tok = AutoTokenizer.from_pretrained(str(name_or_path))
    except OSError as e:
        raise UserError(f"model: cannot load a tokenizer from '{name_or_path}': {e}") from e
    if not tok.is_fast:
        raise UserError(f"model: '{name_or_path}' has no fast tokenizer (word_ids() needs one)")
    return tok


def max_length_for(model_cfg, tokenizer: PreTrainedTokenizerBase) -> int:
    """The window in sub-tokens: model.max_length, else the tokenizer's limit capped at 512."""
    if model_cfg.max_length is not None:
        return model_cfg.max_length
    if model_cfg.name_or_path is None:
        return model_cfg.max_position_embeddings - 2  # XLM-R positions start after the pad id
    limit = tokenizer.model_max_length
    return min(limit, 512) if limit and limit < 10**6 else 512


def build_model(model_cfg, labels: list[str], tokenizer, seed: int) -> torch.nn.Module:
    """The token-classification model; its weights are identical on every rank for one seed."""
    id2label = dict(enumerate(labels))
    label2id = {name: i for i, name in id2label.items()}
    dropout = {}
    if model_cfg.dropout is not None:
        dropout = {
            "hidden_dropout_prob": model_cfg.dropout,
            "attention_probs_dropout_prob": model_cfg.dropout,
        }
    torch.manual_seed(seed)  # the head (and the tiny model) start from the same weights everywhere
    if model_cfg.name_or_path is None:
        config = XLMRobertaConfig(
            vocab_size=len(tokenizer),
            hidden_size=model_cfg.hidden_size,
            num_hidden_layers=model_cfg.num_layers,
            num_attention_heads=model_cfg.num_heads,
            intermediate_size=model_cfg.intermediate_size,
            max_position_embeddings=model_cfg.max_position_embeddings,
            type_vocab_size=1,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
            num_labels=len(labels),
            id2label=id2label,
            label2id=label2id,
            **dropout,
        )
        return XLMRobertaForTokenClassification(config)
    try:
        config = AutoConfig.from_pretrained(
            model_cfg.name_or_path,
            num_labels=len(labels),
            id2label=id2label,
            label2id=label2id,
            **dropout,
        )
        return AutoModelForTokenClassification.from_pretrained(
            model_cfg.name_or_path, config=config
        )
    except OSError as e:
        raise UserError(f"model: cannot load '{model_cfg.name_or_path}': {e}") from e
