"""Tokenizers: the tiny model's, trained on the training sentences, or a pretrained model's.

`model.name_or_path` null trains a SentencePiece Unigram tokenizer with the `tokenizers` library
on the training sentences, with XLM-R's special tokens. Either way the tokenizer must be a fast
one (word alignment needs `word_ids()`) with the special tokens a window is made of, and a
byte-level BPE one (RoBERTa) is given `add_prefix_space`, so that pre-split words get the
sub-tokens they have in running text.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from ner.errors import UserError

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids 0, 1, 2, 3, last


def train_tokenizer(
    words: Iterable[Sequence[str]], vocab_size: int, out_dir: Path | None = None
) -> PreTrainedTokenizerFast:
    """Train a SentencePiece Unigram tokenizer on sentences of words (saved in HF format to
    `out_dir` when given)."""
    from tokenizers.implementations import SentencePieceUnigramTokenizer

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
    tok = tokenizer_from_spec(json.dumps(spec))
    # As every later reader reads it (AutoTokenizer: a resume, ner-evaluate, ner-predict, the
    # exported model): transformers rebuilds XLM-R's normalizer and pre-tokenizer from the
    # tokenizer's class, so the trained pipeline's own (NFKC, control characters removed) would
    # tokenize some words in training otherwise than after it ('\u200f' in WikiANN he).
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_pretrained(tmp)
        tok = tokenizer_from_spec(load_tokenizer(tmp).backend_tokenizer.to_str())
    if out_dir is not None:
        tok.save_pretrained(str(out_dir))
    return tok


def tokenizer_from_spec(spec: str) -> PreTrainedTokenizerFast:
    """The tiny model's tokenizer from its serialized pipeline (tokenizer.json's text): how rank 0
    hands the tokenizer it trained to every rank without a file."""
    from tokenizers import Tokenizer
    from transformers import XLMRobertaTokenizerFast

    return XLMRobertaTokenizerFast(
        tokenizer_object=Tokenizer.from_str(spec),
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )


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


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, directory: Path) -> None:
    """Save in Hugging Face format as one step (ner/atomic.py replace_dir): a kill leaves the
    old directory or the new one, never a half-written file."""
    from ner.atomic import replace_dir

    replace_dir(directory, lambda tmp: tokenizer.save_pretrained(str(tmp)), "tokenizer")


def cannot_load(what: str, source: str | Path, error: OSError) -> UserError:
    """The one line for a model, config or tokenizer that from_pretrained could not load; a hub
    name (not a directory here) is told how to run from a local copy."""
    hint = "" if Path(source).is_dir() else "; give a local directory: model.name_or_path=DIR"
    return UserError(
        f"model: cannot load {what} from '{source}': {' '.join(str(error).split())}{hint}"
    )


def load_tokenizer(name_or_path: str | Path) -> PreTrainedTokenizerBase:
    """A model's fast tokenizer, set to tokenize pre-split words as they read in running text."""
    try:
        tok = AutoTokenizer.from_pretrained(str(name_or_path))
    except OSError as e:
        raise cannot_load("a tokenizer", name_or_path, e) from e
    except Exception as e:  # a torn or foreign file (tokenizer.json): name it, keep the cause
        raise UserError(
            f"model: the tokenizer in '{name_or_path}' cannot be read ({type(e).__name__}: {e})"
        ) from e
    files = type(tok).vocab_files_names.values()  # tokenizer.json, vocab.txt, spm.model, ...
    if Path(name_or_path).is_dir() and not any(Path(name_or_path, f).is_file() for f in files):
        # transformers 5 then builds a tokenizer of the special tokens alone: every word unknown
        raise UserError(
            f"model: {name_or_path} holds no tokenizer files (none of {', '.join(files)}), as "
            "model.save_pretrained() alone leaves a directory; save the tokenizer there too "
            "(tokenizer.save_pretrained(DIR)), or copy the tokenizer files of the model it "
            "was trained from"
        )
    if not tok.is_fast:
        raise UserError(f"model: '{name_or_path}' has no fast tokenizer (word_ids() needs one)")
    missing = [
        name for name in ("cls_token", "sep_token", "unk_token") if getattr(tok, name) is None
    ]
    if missing:
        raise UserError(
            f"model: the tokenizer of '{name_or_path}' has no {', '.join(missing)} (a window is "
            "cls_token, the words' sub-tokens, sep_token; a word with none gets unk_token)"
        )
    add_prefix_space(tok)
    check_template(tok, name_or_path)
    return tok


def check_template(tok: PreTrainedTokenizerBase, name_or_path: str | Path) -> None:
    """Windows are built as cls_token, the words' sub-tokens, sep_token (ner/features.py): the
    tokenizer must wrap a sentence the same way, or a pipeline on the export would feed the model
    other inputs than training did (XLNet puts its cls last; a tokenizer saved without a
    post-processor adds none)."""
    enc = tok(["a"], is_split_into_words=True)
    ids, inside = enc["input_ids"], [k for k, w in enumerate(enc.word_ids()) if w is not None]
    first, end = (inside[0], inside[-1] + 1) if inside else (len(ids), len(ids))
    prefix, suffix = ids[:first], ids[end:]
    if (prefix, suffix) == ([tok.cls_token_id], [tok.sep_token_id]):
        return
    convert = tok.convert_ids_to_tokens
    shown = " ".join([*convert(prefix), "…", *convert(suffix)])
    if not prefix and not suffix:
        shown += " (no special tokens)"
    raise UserError(
        f"model: the tokenizer of '{name_or_path}' wraps a sentence as {shown}; ner "
        f"builds windows as {tok.cls_token} … {tok.sep_token}, so a pipeline on the export "
        "would feed the model other inputs than training did"
    )


BYTE_LEVEL = {"ByteLevel", "RobertaProcessing"}  # the parts of a byte-level BPE pipeline


def add_prefix_space(tok: PreTrainedTokenizerBase) -> None:
    """Give a byte-level BPE tokenizer (RoBERTa, GPT-2 style) `add_prefix_space`.

    Such a tokenizer marks a word that follows a space with a leading "Ġ". Given pre-split
    words (is_split_into_words), it sees each word alone, with no space before it, so without
    add_prefix_space every word is tokenized as the first word of a text is ("York" instead of
    "ĠYork"): ids the pretrained model rarely saw mid-sentence, and other than the ones a
    pipeline on the running text gives. Found from the backend pipeline itself (its ByteLevel
    parts), not from a model name; set there and as the tokenizer's `add_prefix_space`, so that
    an exported tokenizer (and a pipeline on it) keeps it.
    """
    spec = json.loads(tok.backend_tokenizer.to_str())
    changed = False
    for part in ("pre_tokenizer", "post_processor"):
        node = spec.get(part) or {}
        for unit in node.get("pretokenizers") or node.get("processors") or [node]:
            if unit.get("type") in BYTE_LEVEL and unit.get("add_prefix_space") is False:
                unit["add_prefix_space"] = changed = True
    if not changed:
        return
    from tokenizers import Tokenizer

    rebuilt = Tokenizer.from_str(json.dumps(spec))
    tok.backend_tokenizer.pre_tokenizer = rebuilt.pre_tokenizer
    tok.backend_tokenizer.post_processor = rebuilt.post_processor
    tok.add_prefix_space = True
