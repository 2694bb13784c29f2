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
    spec = json.loads(sp.to_str())
    n_special = len(SPECIAL_TOKENS) - 1
    spec["model"]["vocab"] = spec["model"]["vocab"][:n_special] + canonical_pieces(
        spec["model"]["vocab"][n_special:]
    )
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


LADDER_STEP = 1e-4  # see canonical_pieces


def canonical_pieces(pieces: list[list]) -> list[list]:
    """The trained pieces with scores that depend on nothing but the training sentences.

    Two things in the `tokenizers` Unigram trainer vary from process to process. Piece scores
    are summed in parallel threads, so their last digits differ: they are rounded to 6 decimals.
    And characters the model must keep but did not learn are appended at the bottom with scores
    min + k * 1e-4 in the order of a hash set seeded per process (its `finalize`), so which
    character gets which k is random: those rungs all get the minimum score. Sorted by score,
    then piece, the same sentences give the same file, ids and segmentation in every process.
    """
    rounded = [[piece, round(score, 6)] for piece, score in pieces]
    low = min(score for _, score in rounded)
    scores = {score for _, score in rounded}
    rungs, k = set(), 1
    while round(low + k * LADDER_STEP, 6) in scores:
        rungs.add(round(low + k * LADDER_STEP, 6))
        k += 1
    canonical = [[piece, low if score in rungs else score] for piece, score in rounded]
    return sorted(canonical, key=lambda v: (-v[1], v[0]))


def load_tokenizer(name_or_path: str | Path) -> PreTrainedTokenizerBase:
    try:
        tok = AutoTokenizer.from_pretrained(str(name_or_path))
    except OSError as e:
        raise UserError(f"model: cannot load a tokenizer from '{name_or_path}': {e}") from e
    if not tok.is_fast:
        raise UserError(f"model: '{name_or_path}' has no fast tokenizer (word_ids() needs one)")
    return tok
