"""Words to model inputs: sub-token alignment, windows for long sentences, and the collator.

Every word keeps exactly one labelled position: the first sub-token of the word, in exactly one
window. A word the tokenizer turns into no sub-token (a lone zero-width joiner, a control
character) is given the unk piece, so its label is still trained and scored. A sentence longer
than the model's window is split into overlapping windows: each word is labelled in the one
window that "owns" it and appears in its neighbours only as context. Concatenating the labelled
positions of an example's windows, in order, gives one position per word.

Tokenize once: encoded features are cached on disk (`cached_features`), keyed by everything they
depend on: the sentences and tags, the label list, the tokenizer (its full serialized pipeline),
the window length and stride, and FEATURES_VERSION (bump it when the encoding code changes what
it produces). The first process of each node (local rank 0) encodes and writes the file
atomically; the other ranks wait at a barrier and read it. A sweep's later jobs, and resumed
runs, read it too, checked whole (`read_cache`). JSON, not pickle: reading a cache file runs no
code.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ner import atomic, distributed
from ner.errors import UserError

# The label of positions that are not scored: sub-tokens after a word's first, context, padding.
IGNORE = -100


@dataclass(frozen=True)
class Window:
    """Words [start, end) go into the window; words [own_start, own_end) are labelled in it."""

    start: int
    end: int
    own_start: int
    own_end: int


@dataclass
class FeatureStats:
    """What encoding had to do to keep every label: reported at start, never silent."""

    sentences: int = 0
    words: int = 0
    sub_tokens: int = 0
    empty_words: int = 0  # words with no sub-token, given the unk piece
    unknown_words: int = 0  # words that are the unk piece alone (the empty ones among them)
    capped_words: int = 0  # single words longer than a whole window, cut after their first pieces
    split_sentences: int = 0  # sentences that needed more than one window
    windows: int = 0
    longest_sentence: int = 0  # in sub-tokens, without special tokens
    empty_examples: list[str] = field(default_factory=list)  # first few, for the report

    def lines(self, split: str) -> list[str]:
        per_word = self.sub_tokens / max(self.words, 1)
        out = [
            f"{split}: {self.sentences} sentences, {self.words} words, {per_word:.2f} sub-tokens "
            f"per word, longest sentence {self.longest_sentence} sub-tokens, {self.windows} "
            f"windows ({self.split_sentences} sentences split into several)"
        ]
        if self.empty_words:
            out.append(
                f"{split}: {self.empty_words} words had no sub-token and were given the unk "
                f"piece (labels kept), e.g. {', '.join(self.empty_examples)}"
            )
        if self.capped_words:
            out.append(
                f"{split}: {self.capped_words} single words were longer than a window; their "
                "first pieces were kept (labels kept)"
            )
        return out


def unknown_words(stats: dict[str, FeatureStats], limit: float, model: str, unk: str) -> str:
    """The start line of the share of training words the tokenizer maps to its unknown piece
    alone, per training split in `stats`; a split past `limit` (model.max_unknown_words) is
    refused, as those words all read the same to the model (a model directory without its
    tokenizer files, a vocabulary without the data's script)."""
    shares = {split: s.unknown_words / max(s.words, 1) for split, s in stats.items()}
    for split, share in shares.items():
        if share > limit:
            raise UserError(
                f"model: the tokenizer of {model} maps {share:.1%} of the words of {split} to "
                f"its unknown piece {unk} alone (more than model.max_unknown_words={limit:g}), "
                "so the model would see them all as one word; choose a model whose vocabulary "
                "covers the data, or set model.max_unknown_words=1 to train anyway"
            )
    unknown = sum(s.unknown_words for s in stats.values())
    total = unknown / max(sum(s.words for s in stats.values()), 1)
    each = f" ({', '.join(f'{k} {v:.2%}' for k, v in shares.items())})" if len(shares) > 1 else ""
    return f"tokenizer: {total:.2%} of training words map to the unknown piece {unk}{each}"


def plan_windows(piece_counts: Sequence[int], max_pieces: int, stride: int) -> list[Window]:
    """Split a sentence of words with `piece_counts` sub-tokens into windows of <= max_pieces.

    A sentence that fits is one window. Otherwise each window owns as many words as fit in
    max_pieces - 2*stride, with up to `stride` pieces of left context and the rest of the window
    as right context. A single word longer than a window is owned alone (its pieces get capped).
    """
    n = len(piece_counts)
    if sum(piece_counts) <= max_pieces:
        return [Window(0, n, 0, n)]
    own_budget = max(max_pieces - 2 * stride, 1)
    windows, a = [], 0
    while a < n:
        b, own = a, 0
        while b < n and own + piece_counts[b] <= own_budget:
            own += piece_counts[b]
            b += 1
        if b == a:  # one word larger than the owned budget: it is owned alone
            own, b = min(piece_counts[a], max_pieces), a + 1
        left, used = a, 0
        while left > 0 and used + piece_counts[left - 1] <= min(stride, max_pieces - own):
            left -= 1
            used += piece_counts[left]
        right, room = b, max_pieces - own - used
        while right < n and piece_counts[right] <= room:
            room -= piece_counts[right]
            right += 1
        windows.append(Window(left, right, a, b))
        a = b
    return windows


def encode_sentence(
    pieces: Sequence[Sequence[int]],
    label_ids: Sequence[int],
    max_length: int,
    stride: int,
    cls_id: int,
    sep_id: int,
    unk_id: int,
    stats: FeatureStats | None = None,
) -> list[dict[str, list[int]]]:
    """Encode one sentence (its words' sub-token ids and one label id per word) into windows.

    Returns one dict per window with `input_ids` and `labels` (IGNORE except at the first
    sub-token of each owned word), both of length <= max_length including <s> and </s>.
    """
    assert len(pieces) == len(label_ids), f"{len(pieces)} words but {len(label_ids)} labels"
    max_pieces = max_length - 2
    pieces = [list(p) if len(p) else [unk_id] for p in pieces]
    capped = [p[:max_pieces] for p in pieces]
    windows = plan_windows([len(p) for p in capped], max_pieces, stride)
    out = []
    for w in windows:
        ids, labels = [cls_id], [IGNORE]
        for i in range(w.start, w.end):
            ids.extend(capped[i])
            owned = w.own_start <= i < w.own_end
            labels.append(label_ids[i] if owned else IGNORE)
            labels.extend([IGNORE] * (len(capped[i]) - 1))
        ids.append(sep_id)
        labels.append(IGNORE)
        assert len(ids) <= max_length, f"window of {len(ids)} > max_length {max_length}"
        out.append({"input_ids": ids, "labels": labels})
    if stats is not None:
        stats.sentences += 1
        stats.words += len(pieces)
        stats.sub_tokens += sum(len(p) for p in pieces)
        stats.capped_words += sum(len(p) > max_pieces for p in pieces)
        stats.unknown_words += sum(all(i == unk_id for i in p) for p in pieces)
        stats.windows += len(windows)
        stats.split_sentences += len(windows) > 1
        stats.longest_sentence = max(stats.longest_sentence, sum(len(p) for p in pieces))
    return out


def word_pieces(tokenizer, sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
    """Sub-token ids of every word of every sentence, tokenized as pre-split words.

    Uses `is_split_into_words` on the whole sentence (as run_ner does) and groups the ids by
    `word_ids()`; a word that produced no id gets an empty list (encode_sentence maps it to unk).
    """
    enc = tokenizer(
        [list(s) for s in sentences], is_split_into_words=True, add_special_tokens=False
    )
    out = []
    for i, words in enumerate(sentences):
        grouped: list[list[int]] = [[] for _ in words]
        for tok, w in zip(enc["input_ids"][i], enc.word_ids(i), strict=True):
            if w is not None:
                grouped[w].append(tok)
        out.append(grouped)
    return out


def encode_split(
    tokenizer,
    sentences: Sequence[Sequence[str]],
    label_ids: Sequence[Sequence[int]],
    max_length: int,
    stride: int,
    chunk: int = 1000,
) -> tuple[list[dict], FeatureStats]:
    """Encode a whole split: one feature per window, each tagged with its example index."""
    stats = FeatureStats()
    features = []
    for lo in range(0, len(sentences), chunk):
        batch = sentences[lo : lo + chunk]
        for j, pieces in enumerate(word_pieces(tokenizer, batch)):
            example = lo + j
            windows = encode_sentence(
                pieces,
                label_ids[example],
                max_length,
                stride,
                tokenizer.cls_token_id,
                tokenizer.sep_token_id,
                tokenizer.unk_token_id,
                stats,
            )
            for word, p in zip(batch[j], pieces, strict=True):
                if p:
                    continue
                stats.empty_words += 1
                if len(stats.empty_examples) < 3:
                    codes = " ".join(f"U+{ord(c):04X}" for c in word) or "(empty)"
                    stats.empty_examples.append(f"example {example} word {codes}")
            for k, f in enumerate(windows):
                f["example"], f["window"] = example, k
                features.append(f)
    return features, stats


def gather_word_predictions(
    features: Sequence[dict], predictions: Sequence[Sequence[int]], n_examples: int
) -> list[list[int]]:
    """Reassemble per-window predictions (one per labelled position) into one per word.

    `predictions[i]` holds the predicted ids at the labelled positions of `features[i]`, in
    position order. Windows are concatenated in (example, window) order.
    """
    order = sorted(
        range(len(features)), key=lambda i: (features[i]["example"], features[i]["window"])
    )
    words: list[list[int]] = [[] for _ in range(n_examples)]
    for i in order:
        words[features[i]["example"]].extend(predictions[i])
    return words


FEATURES_VERSION = 2  # 2: FeatureStats counts unknown_words


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
    """`build()` once per node (or always, when cache_dir is null), else read the cached result.

    A cache file that cannot be read back whole (a kill inside a write that was not atomic, a
    full disk, a foreign file) is rebuilt by the node's first process, with a warning naming it.
    """
    if cache_dir is None:
        return build()
    path = Path(cache_dir).expanduser() / f"{key}.json"
    mine = None  # the node's first process: read, or build and write
    if env.is_local_main:
        try:
            mine = read_cache(path, key) if path.exists() else None
        except UserError as e:
            print(f"warning: {e}; rebuilt", file=sys.stderr, flush=True)
        if mine is None:
            mine = build()
            features, stats = mine
            atomic.write_text(
                path,
                json.dumps({"key": key, "features": features, "stats": asdict(stats)}),
                "feature cache",
            )
    distributed.barrier(env)
    return mine if mine is not None else read_cache(path, key)


def read_cache(path: Path, key: str) -> tuple[list[dict], FeatureStats]:
    """A cache file's features and statistics, checked whole; one line naming it if not."""
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("key", key) != key:  # files of older versions hold no key
            raise ValueError(f"it holds the features of key {cached['key']}")
        features, stats = cached["features"], FeatureStats(**cached["stats"])
        if not isinstance(features, list) or len(features) != stats.windows:
            raise ValueError(f"{stats.windows} windows expected")
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise UserError(
            f"feature cache {path} (data.cache_dir) cannot be read ({type(e).__name__}: {e}); "
            "delete the file to rebuild it"
        ) from e
    return features, stats
