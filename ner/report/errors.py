"""Error analysis of a tagging: every entity as correct, wrong type, wrong boundary, wrong both,
missed or spurious (the MUC categories of Chinchor & Sundheim, as nervaluate names them).

Entities are read from IOB2 tags with seqeval's `get_entities`; a span is (first word, last word).
Gold and predicted entities are paired as every strategy of nervaluate (>= 1.0) pairs them:
the predictions are taken left to right, and each is paired with the leftmost gold entity it
overlaps (by one word or more) that is not yet paired. A pair is then

- correct:        same span, same type;
- wrong type:     same span, another type;
- wrong boundary: overlapping spans, same type;
- wrong both:     overlapping spans, another type.

A prediction left unpaired is spurious, even when it overlaps a gold entity already paired (a
gold entity split in two predictions: the left piece is its pair, the right piece is spurious);
a gold entity left unpaired is missed. So each gold entity has exactly one category, and the
counts of all categories sum to gold + spurious entities. The pairing is greedy, not the best
one: a prediction of another type that overlaps a gold entity first takes it.
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
    from seqeval.metrics.sequence_labeling import get_entities  # lazy, as in ner.metrics

    return [Entity(t, s, e) for t, s, e in get_entities(list(tags))]


def classify(
    gold: list[Entity], pred: list[Entity]
) -> list[tuple[str, Entity | None, Entity | None]]:
    """(category, gold entity, its paired prediction or None) for each gold entity, in order,
    then (spurious, None, prediction) for each unpaired prediction."""
    paired: dict[int, Entity] = {}  # gold index -> its prediction
    spurious = []
    for p in pred:
        g = next((i for i, g in enumerate(gold) if i not in paired and g.overlaps(p)), None)
        if g is None:
            spurious.append(p)
        else:
            paired[g] = p
    out: list[tuple[str, Entity | None, Entity | None]] = []
    for i, g in enumerate(gold):
        p = paired.get(i)
        if p is None:
            out.append(("missed", g, None))
            continue
        same_span = (g.start, g.end) == (p.start, p.end)
        out.append((CATEGORIES[(0 if same_span else 2) + (0 if g.type == p.type else 1)], g, p))
    return out + [("spurious", None, p) for p in spurious]


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


def summary(analysis: Analysis) -> dict[str, dict[str, int]]:
    """{type: {category: entities}} for every type (sorted) and every category, then "all": the
    summary table's rows as plain data (the model card's, from ner/report/outcome.py)."""
    rows = {t: analysis.per_type[t] for t in sorted(analysis.per_type)}
    rows["all"] = analysis.counts
    return {t: {c: int(counts[c]) for c in CATEGORIES} for t, counts in rows.items()}


def summary_table(rows: dict[str, dict[str, int]]) -> str:
    """The markdown table of a `summary`: one row per type and "all", one column per category."""
    return markdown_table(
        ["type", *CATEGORIES], [[t, *(str(row[c]) for c in CATEGORIES)] for t, row in rows.items()]
    )


def confusion_grid(confusion: Counter) -> tuple[list[str], list[str], list[list[int]]]:
    """(row names, column names, counts[row][column]) of a type confusion: rows the gold types
    and then NONE_GOLD, columns the predicted types and then NONE_PRED. Square on the types: a
    type only ever predicted (or only ever gold) still has both."""
    named = sorted({t for pair in confusion for t in pair} - {NONE_GOLD, NONE_PRED})
    rows, columns = [*named, NONE_GOLD], [*named, NONE_PRED]
    return rows, columns, [[confusion[(g, p)] for p in columns] for g in rows]


def render(analysis: Analysis) -> str:
    """The summary per type, the type confusion and the most frequent errors, as markdown."""
    by_type = summary_table(summary(analysis))
    rows, columns, counts = confusion_grid(analysis.confusion)
    confusion = markdown_table(
        ["gold \\ predicted", *columns],
        [[g, *map(str, line)] for g, line in zip(rows, counts, strict=True)],
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
            by_type,
            "Type confusion (gold rows, predicted columns)",
            confusion,
            "Most frequent errors (sentence indices from 0)",
            frequent,
        ]
    )
