"""The core data record: a sentence of words and their tags, with where it came from.

Every source (WikiANN by hub name or local directory, JSON-lines and CoNLL files, the generated
demo) gives `Sentence`s, so validation, tokenization and error messages work the same for all.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

from ner.errors import DataError


@dataclass
class Sentence:
    tokens: list[str]
    tags: list[str]  # tag NAMES (e.g. "B-PER"), never ids
    where: str  # human location, e.g. "data/train.conll (split train), line 12"
    # The line of each token where the source has one per token (CoNLL), else None. Only for
    # messages, and not compared: for a given `where` it follows from the token order.
    lines: list[int] | None = field(default=None, compare=False)


def token_error(sentence: Sentence, i: int, problem: str) -> DataError:
    """'<where>: token 2 of 3 <problem>', plus the token's own line when it is not `where`'s."""
    lines = sentence.lines
    own_line = f" (token on line {lines[i]})" if lines and lines[i] != lines[0] else ""
    n = len(sentence.tokens)
    return DataError(f"{sentence.where}: token {i + 1} of {n} {problem}{own_line}")


def fingerprint(sentences: list[Sentence]) -> str:
    """sha256 of the words and tags of every sentence, in order: what a run trains or is
    scored on, whatever file or dataset it came from (a checkpoint keeps it; ner/run/rundir.py)."""
    digest = hashlib.sha256()
    for s in sentences:
        digest.update(json.dumps([s.tokens, s.tags], ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


def entity_counts(sentences: list[Sentence]) -> dict[str, int]:
    """Number of entities per type, sorted by type, for statistics: the entities the metrics
    count (seqeval's default mode), so the tag scheme is known only to ner/data/checks.py."""
    from seqeval.metrics.sequence_labeling import get_entities

    counts: Counter[str] = Counter()
    for sentence in sentences:
        counts.update(kind for kind, _, _ in get_entities(list(sentence.tags)))
    return dict(sorted(counts.items()))
