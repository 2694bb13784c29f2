"""Check sentences before tokenization: lengths, tag names, empty and invisible tokens, IOB2.

Every problem is reported with the sentence's `where` (file and line, or dataset, split and row)
so the user can find it; a problem with one token also names that token's own line where the source
has one line per token (CoNLL). Problems that have one safe fix (an empty sentence, an invisible
token, an `I-X` that continues nothing) are errors under `on_error="raise"` and are fixed and
counted under `on_error="repair"`. A repair never drops a token, because that would silently drop its label.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from ner.data.sentences import Sentence, token_error
from ner.errors import DataError, UserError

# data.on_error (ner/config.py OnError is made of these): repair, the default, or raise.
ON_ERROR_CHOICES = ("repair", "raise")

# Characters a tokenizer turns into nothing: controls, format characters (zero-width
# joiner/non-joiner, bidi marks and embeddings) and separators. A token made only of these has
# no pieces, so its tag would vanish from the aligned labels.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})

_EXAMPLES_PER_KIND = 3


@dataclass
class ValidationReport:
    split: str
    sentences: int = 0  # kept
    tokens: int = 0  # kept
    dropped_empty: int = 0  # sentences with no tokens, dropped
    invisible_tokens: int = 0  # empty/invisible tokens, kept with their tag
    repaired_iob: int = 0  # I-X tags that continued nothing, rewritten to B-X
    # kind -> the `where` of the first few sentences it happened in, to show the user
    examples: dict[str, list[str]] = field(default_factory=dict)

    def _note(self, kind: str, where: str) -> None:
        seen = self.examples.setdefault(kind, [])
        if len(seen) < _EXAMPLES_PER_KIND and where not in seen:
            seen.append(where)

    def lines(self) -> list[str]:
        """Human summary: one line of totals, then one line per kind of repair made."""
        head = f"split {self.split}: {self.sentences} sentences, {self.tokens} tokens"
        out = [head + ("" if self.repaired else ", no problems found")]
        for count, kind, text in (
            (self.dropped_empty, "empty_sentence", "dropped {} empty sentences"),
            (self.invisible_tokens, "invisible_token", "kept {} empty/invisible tokens"),
            (self.repaired_iob, "iob", "rewrote {} I- tags that continued no entity to B-"),
        ):
            if count:
                where = "; ".join(self.examples.get(kind, []))
                out.append(f"split {self.split}: {text.format(count)} (e.g. {where})")
        return out

    @property
    def repaired(self) -> int:
        return self.dropped_empty + self.invisible_tokens + self.repaired_iob


def parse_labels(labels: list[str]) -> dict[str, tuple[str, str | None]]:
    """Map each label to (prefix, type): "O" -> ("O", None), "B-PER" -> ("B", "PER").

    Raises UserError unless every label is IOB2-shaped, unique, and every I-X has its B-X.
    """
    parsed: dict[str, tuple[str, str | None]] = {}
    for label in labels:
        parts = _iob2_parts(label)
        if parts is None:
            raise UserError(f"labels {list(labels)}: {label!r} is not an IOB2 tag ({_IOB2})")
        parsed[label] = parts
    if len(parsed) != len(labels):
        dupes = sorted(label for label, n in Counter(labels).items() if n > 1)
        raise UserError(f"labels {list(labels)}: duplicated {dupes}")
    for label, (prefix, typ) in parsed.items():
        if prefix == "I" and f"B-{typ}" not in parsed:
            raise UserError(f"labels {list(labels)}: {label!r} has no matching 'B-{typ}'")
    return parsed


_IOB2 = "expected 'O', 'B-<type>' or 'I-<type>'"


def _iob2_parts(tag: object) -> tuple[str, str | None] | None:
    """(prefix, type) of an IOB2 tag, exact case: "O" -> ("O", None), "B-PER" -> ("B", "PER");
    None for anything else."""
    if tag == "O":
        return "O", None
    if isinstance(tag, str) and tag[:2] in ("B-", "I-") and tag[2:].strip():
        return tag[0], tag[2:]
    return None


def validate_split(
    sentences: list[Sentence], labels: list[str], split: str, on_error: str = "raise"
) -> tuple[list[Sentence], ValidationReport]:
    """Check one split; return the (possibly repaired) sentences and what was repaired.

    Unequal token/tag counts and unknown tags are always errors. Empty sentences, empty or
    invisible tokens and I-X tags that continue nothing are errors under "raise" and repaired
    under "repair". The input sentences are never modified.
    """
    if on_error not in ON_ERROR_CHOICES:
        raise UserError(f"on_error must be one of {list(ON_ERROR_CHOICES)}, got {on_error!r}")
    repair = on_error == "repair"
    parsed = parse_labels(labels)
    report = ValidationReport(split=split)
    kept: list[Sentence] = []
    for sentence in sentences:
        tokens, tags, where = sentence.tokens, sentence.tags, sentence.where
        n = len(tokens)
        _check_length(sentence)
        if n == 0:
            if not repair:
                raise DataError(f"{where}: empty sentence (0 tokens); on_error=repair drops it")
            report.dropped_empty += 1
            report._note("empty_sentence", where)
            continue
        if not parsed.keys() >= set(tags):
            _raise_unknown_tag(sentence, parsed)
        for i, token in enumerate(tokens):
            # Fast path: a printable string with a non-space character is visible.
            if token.__class__ is str and token.isprintable() and token.strip():
                continue
            if not _is_invisible(token, sentence, i):
                continue
            if not repair:
                raise token_error(
                    sentence,
                    i,
                    f"{_describe_invisible(token)} and would vanish in tokenization, losing its "
                    f"tag {tags[i]!r}; remove it, or on_error=repair keeps it as an unknown token",
                )
            report.invisible_tokens += 1
            report._note("invisible_token", where)
        fixed = _check_iob2(sentence, parsed, repair)
        if fixed is not None:
            report.repaired_iob += fixed[1]
            report._note("iob", where)
            sentence = replace(sentence, tags=fixed[0])
        kept.append(sentence)
        report.sentences += 1
        report.tokens += n
    return kept, report


def _check_length(sentence: Sentence) -> None:
    n, m = len(sentence.tokens), len(sentence.tags)
    if n != m:
        raise DataError(f"{sentence.where}: {n} tokens but {m} tags")


def _raise_unknown_tag(sentence: Sentence, parsed: dict) -> None:
    for i, tag in enumerate(sentence.tags):
        if tag not in parsed:
            if _looks_like_id(tag):
                hint = " (tags must be names such as 'B-PER', not ids)"
            elif case := _case_hint(tag, parsed):
                hint = f" ({case})"
            else:
                hint = ""
            raise token_error(
                sentence,
                i,
                f"({sentence.tokens[i]!r}) has unknown tag {tag!r}{hint}; "
                f"known labels: {', '.join(parsed)}",
            )


def _shape_problem(tag: object, good: list[str]) -> str:
    """Why a tag is not IOB2; for a wrong-case 'o' or 'b-per', the tag it probably means (the same
    tag elsewhere in the data, else the one with the prefix upper-cased)."""
    fixed = tag[:2].upper() + tag[2:] if isinstance(tag, str) else tag
    if _iob2_parts(fixed) is None:
        return f", which is not an IOB2 tag: {_IOB2}"
    what = "wrong case" if fixed == "O" else "the prefix must be upper-case B- or I-"
    return f": {what}; {_case_hint(tag, [*good, fixed])}"


def _case_hint(tag: object, labels: Iterable[str]) -> str:
    """A hint such as "did you mean 'B-LOC'? tags are case-sensitive" when tag is one of labels
    but for case, else ""."""
    if isinstance(tag, str):
        for label in labels:
            if label.casefold() == tag.casefold():
                return f"did you mean {label!r}? tags are case-sensitive"
    return ""


def _looks_like_id(tag: object) -> bool:
    return isinstance(tag, int) or (isinstance(tag, str) and tag.isdigit())


def _is_invisible(token: object, sentence: Sentence, i: int) -> bool:
    if not isinstance(token, str):
        raise token_error(sentence, i, f"is {type(token).__name__} ({token!r}), expected a string")
    return all(c.isspace() or unicodedata.category(c) in INVISIBLE_CATEGORIES for c in token)


def _describe_invisible(token: str) -> str:
    if not token:
        return "is empty"
    shown = ", ".join(
        f"U+{ord(c):04X} {unicodedata.name(c, unicodedata.category(c))}" for c in token[:8]
    )
    more = f", ... ({len(token)} characters)" if len(token) > 8 else ""
    return f"is invisible ({shown}{more})"


def _check_iob2(
    sentence: Sentence, parsed: dict[str, tuple[str, str | None]], repair: bool
) -> tuple[list[str], int] | None:
    """Return (repaired tags, number repaired), or None when the tags are valid IOB2."""
    tags = sentence.tags
    new_tags: list[str] | None = None
    count = 0
    prev_type: str | None = None  # entity type the previous tag belongs to, None after O
    for i, tag in enumerate(tags):
        prefix, typ = parsed[tag]
        if prefix == "I" and typ != prev_type:
            if not repair:
                _raise_iob(sentence, i, parsed)
            if new_tags is None:
                new_tags = list(tags)
            new_tags[i] = f"B-{typ}"
            count += 1
        prev_type = typ
    return None if new_tags is None else (new_tags, count)


def _raise_iob(sentence: Sentence, i: int, parsed: dict) -> None:
    tags, n = sentence.tags, len(sentence.tags)
    tag = tags[i]
    typ = parsed[tag][1]
    after = "starts the sentence" if i == 0 else f"follows {tags[i - 1]}"
    lo, hi = max(0, i - 2), min(n, i + 3)
    context = " ".join(f"[{t}]" if j == i else t for j, t in enumerate(tags[lo:hi], start=lo))
    raise token_error(
        sentence,
        i,
        f"({sentence.tokens[i]!r}) has tag {tag} but {after}, so it continues no entity "
        f"(tags {lo + 1}-{hi}: {context}); IOB2 needs B-{typ} first; fix the tag, or "
        f"on_error=repair rewrites it to B-{typ}",
    )


def check_iob2_tags(sentences: list[Sentence]) -> None:
    """Raise DataError at the first tag that is not IOB2 ('O', 'B-<type>', 'I-<type>', exact case).

    Run before a label set is derived from the tags: otherwise 'B-' would become a label, 'X-TRA'
    the type TRA, and 'b-per' the labels B-per and I-per.
    """
    tags = {tag for sentence in sentences for tag in sentence.tags}
    good = sorted(tag for tag in tags if _iob2_parts(tag))
    if len(good) == len(tags):
        return
    for sentence in sentences:
        _check_length(sentence)
        for i, tag in enumerate(sentence.tags):
            if _iob2_parts(tag) is None:
                raise token_error(
                    sentence,
                    i,
                    f"({sentence.tokens[i]!r}) has tag {tag!r}{_shape_problem(tag, good)}",
                )


def check_label_sets(
    train_labels: set[str],
    other: dict[str, set[str]],
    sentences: dict[str, Sequence[Sentence]] | None = None,
) -> None:
    """Raise DataError if a validation/test split uses tags that the training split never uses;
    given the split's `sentences`, the message names the place of the first such tag."""
    for split, labels in other.items():
        extra = sorted(set(labels) - set(train_labels))
        if extra:
            found = ((s, i) for s in (sentences or {}).get(split, []) for i in range(len(s.tags)))
            first = next(((s, i) for s, i in found if s.tags[i] in extra), None)
            at = ""
            if first:
                s, i = first
                at = f"; the first: {token_error(s, i, f'({s.tokens[i]!r}) has tag {s.tags[i]!r}')}"
            raise DataError(
                f"split {split}: tags {extra} never occur in split train, so the model "
                f"cannot learn them{at}; add examples to train or fix the tags"
            )
