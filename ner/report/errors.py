"""Error analysis of a tagging: every entity as correct, wrong type, wrong boundary, wrong both,
missed or spurious (the MUC categories of Chinchor & Sundheim, as nervaluate names them).

Entities are read from IOB2 tags with seqeval's `get_entities`; a span is (first word, last word).
Each gold entity gets exactly one category, from the best prediction that overlaps it:

- correct:        a prediction with the same span and the same type;
- wrong type:     else one with the same span and another type;
- wrong boundary: else one that overlaps with the same type;
- wrong both:     else one that overlaps with another type;
- missed:         no prediction overlaps it.

Among several predictions of the same rank, the leftmost is the match. A prediction that overlaps
no gold entity is spurious. A prediction that overlaps a gold entity but is not its match (a gold
entity split in two predictions) is not counted again, so the categories partition
gold + spurious entities. nervaluate walks the predictions instead, classifying each against the
first gold entity it overlaps, so a split gold entity counts once per piece there (its totals can
exceed gold + spurious); the two agree whenever each gold entity overlaps at most one prediction
and each prediction at most one gold entity.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ner.report.tables import markdown_table

CATEGORIES = ("correct", "wrong type", "wrong boundary", "wrong both", "missed", "spurious")
ERRORS = CATEGORIES[1:]
NONE_GOLD = "spurious"  # the confusion table's row of predictions with no gold entity
NONE_PRED = "missed"  # its column of gold entities with no prediction


@dataclass(frozen=True)
class Entity:
    type: str
    start: int  # first word
    end: int  # last word, inclusive

    def overlaps(self, other: Entity) -> bool:
        return self.start <= other.end and other.start <= self.end

    def text(self, tokens: list[str]) -> str:
        return f"{self.type}: {' '.join(tokens[self.start : self.end + 1])}"


@dataclass
class Analysis:
    counts: Counter = field(default_factory=Counter)  # category -> entities
    per_type: dict[str, Counter] = field(default_factory=dict)  # gold (spurious: pred) type
    confusion: Counter = field(default_factory=Counter)  # (gold type, predicted type) -> n
    errors: list[tuple[str, str, str, list[int]]] = field(default_factory=list)
    # (category, gold text, predicted text, sentence indices), most frequent first


def entities(tags: list[str]) -> list[Entity]:
    from seqeval.metrics.sequence_labeling import get_entities

    return [Entity(t, s, e) for t, s, e in get_entities(list(tags))]


def classify(
    gold: list[Entity], pred: list[Entity]
) -> list[tuple[str, Entity | None, Entity | None]]:
    """(category, gold entity, its matched prediction) for each gold entity, in order, then
    (spurious, None, prediction) for each prediction that overlaps no gold entity."""

    def rank(g: Entity, p: Entity) -> int:
        same_span = (g.start, g.end) == (p.start, p.end)
        return (0 if same_span else 2) + (0 if g.type == p.type else 1)

    out: list[tuple[str, Entity | None, Entity | None]] = []
    for g in gold:
        overlapping = [p for p in pred if g.overlaps(p)]
        if not overlapping:
            out.append(("missed", g, None))
            continue
        best = min(overlapping, key=lambda p: (rank(g, p), p.start))
        out.append((CATEGORIES[rank(g, best)], g, best))
    out += [("spurious", None, p) for p in pred if not any(p.overlaps(g) for g in gold)]
    return out


def analyse(
    gold_tags: list[list[str]],
    pred_tags: list[list[str]],
    tokens: list[list[str]],
    top: int = 20,
) -> Analysis:
    """Categories, per-type counts, type confusion and the `top` most frequent errors of a
    tagging; the three lists hold one entry per sentence."""
    assert len(gold_tags) == len(pred_tags) == len(tokens), "one gold, prediction, tokens each"
    result = Analysis()
    where: dict[tuple[str, str, str], list[int]] = {}
    for i, (g_tags, p_tags, words) in enumerate(zip(gold_tags, pred_tags, tokens, strict=True)):
        assert len(g_tags) == len(p_tags) == len(words), f"sentence {i}: lengths differ"
        for category, g, p in classify(entities(g_tags), entities(p_tags)):
            result.counts[category] += 1
            kind = g.type if g is not None else p.type
            result.per_type.setdefault(kind, Counter())[category] += 1
            result.confusion[(g.type if g else NONE_GOLD, p.type if p else NONE_PRED)] += 1
            if category != "correct":
                key = (category, g.text(words) if g else "", p.text(words) if p else "")
                where.setdefault(key, []).append(i)
    # Most frequent first; among equals, the first seen first (dicts keep insertion order).
    ranked = sorted(where.items(), key=lambda kv: -len(kv[1]))[:top]
    result.errors = [(*key, sentences) for key, sentences in ranked]
    return result


def render(analysis: Analysis) -> str:
    """The summary per type, the type confusion and the most frequent errors, as markdown."""
    types = sorted(analysis.per_type)
    summary = markdown_table(
        ["type", *CATEGORIES],
        [[t, *(str(analysis.per_type[t][c]) for c in CATEGORIES)] for t in types]
        + [["all", *(str(analysis.counts[c]) for c in CATEGORIES)]],
    )
    # Square on the types: a type only ever predicted (or only ever gold) still has both.
    named = {t for pair in analysis.confusion for t in pair} - {NONE_GOLD, NONE_PRED}
    columns = [*sorted(named), NONE_PRED]
    confusion = markdown_table(
        ["gold \\ predicted", *columns],
        [
            [g, *(str(analysis.confusion[(g, p)]) for p in columns)]
            for g in [*sorted(named), NONE_GOLD]
        ],
    )
    frequent = (
        markdown_table(
            ["count", "category", "gold", "predicted", "sentences"],
            [
                [
                    str(len(s)),
                    c,
                    g or "-",
                    p or "-",
                    ", ".join(map(str, s[:5])) + (", ..." if len(s) > 5 else ""),
                ]
                for c, g, p, s in analysis.errors
            ],
        )
        if analysis.errors
        else "no errors"
    )
    return "\n\n".join(
        [
            "Entities by category (gold entities; spurious: predictions)",
            summary,
            "Type confusion (gold rows, predicted columns)",
            confusion,
            "Most frequent errors (sentence indices from 0)",
            frequent,
        ]
    )
