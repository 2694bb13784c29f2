"""Tokenizers: the tiny model's, trained on the training sentences, or a pretrained model's.

`model.name_or_path` null trains a SentencePiece Unigram tokenizer with the `tokenizers` library
on the training sentences, with XLM-R's special tokens. Either way the tokenizer must be a fast
one: word alignment needs `word_ids()`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

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
