"""Bootstrap confidence intervals of entity-level precision, recall and F1, over sentences.

seqeval's scores are ratios of three entity counts (true positives, predicted, gold), and a
corpus's counts are the sums of its sentences' counts. So each sentence is scored once
(`sentence_counts`, with seqeval's own `get_entities`, default mode: the totals give seqeval's
micro and per-type scores exactly), and a resampled corpus is a vector of how many times each
sentence was drawn: its counts are that vector's dot products with the sentences' counts, and
`resamples` corpora are one matrix product (over kinds of sentences: those of equal counts).

Resample r draws sentences i.i.d. uniformly with replacement: row r of
`numpy.random.default_rng(seed).integers(0, n, size=(resamples, n))` for n sentences (drawn in
blocks of rows, the same stream). The interval is the percentile one: the 2.5th and 97.5th
percentiles of the resampled scores (numpy's default, linear interpolation). A zero denominator
scores 0, as seqeval's zero_division=0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BLOCK_DRAWS = 1 << 21  # sentences drawn per block of resamples: bounds the memory (16 MiB)
PERCENTILES = (2.5, 97.5)


@dataclass(frozen=True)
class Counts:
    """Entity counts of every sentence, per type: arrays of shape (sentences, types)."""

    types: tuple[str, ...]
    tp: np.ndarray
    pred: np.ndarray
    gold: np.ndarray


def sentence_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> Counts:
    """Each sentence's true positives, predicted and gold entities per type (seqeval's default
    mode: an entity is (type, start, end) of `get_entities`, and a true positive is one found in
    both). Types are those of the gold or the predictions, sorted, as seqeval reports them."""
    assert len(gold) == len(pred), f"{len(gold)} gold sentences but {len(pred)} predicted"
    # Imported here: seqeval imports scikit-learn (about 2 s), as in ner.metrics.
    from seqeval.metrics.sequence_labeling import get_entities

    entities = []
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        assert len(g) == len(p), f"sentence {i}: {len(g)} gold tags but {len(p)} predicted"
        entities.append((set(get_entities(list(g))), set(get_entities(list(p)))))
    types = tuple(sorted({e[0] for pair in entities for side in pair for e in side}))
    column = {t: j for j, t in enumerate(types)}
    tp, n_pred, n_gold = (np.zeros((len(entities), len(types)), np.int64) for _ in range(3))
    for i, (g, p) in enumerate(entities):
        for counts, found in ((tp, g & p), (n_pred, p), (n_gold, g)):
            for e in found:
                counts[i, column[e[0]]] += 1
    return Counts(types, tp, n_pred, n_gold)


def scores(tp: np.ndarray, pred: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, ...]:
    """(precision, recall, f1) of counts of any (equal) shape, element-wise; 0 where a
    denominator is 0. The same operations as seqeval's, so the same floats."""
    tp, pred, gold = (np.asarray(x, np.float64) for x in (tp, pred, gold))
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, gold, out=np.zeros_like(tp), where=gold > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)
    return precision, recall, f1


def point(counts: Counts) -> dict:
    """The corpus's own scores from its sentences' counts: {"precision", "recall", "f1",
    "per_type": {TYPE: {"precision", "recall", "f1"}}} (seqeval's micro and per-type)."""
    sums = [c.sum(axis=0) for c in (counts.tp, counts.pred, counts.gold)]
    micro = scores(*(s.sum() for s in sums))
    per_type = scores(*sums)
    return {
        **{k: float(v) for k, v in zip(("precision", "recall", "f1"), micro, strict=True)},
        "per_type": {
            t: {
                k: float(v[j]) for k, v in zip(("precision", "recall", "f1"), per_type, strict=True)
            }
            for j, t in enumerate(counts.types)
        },
    }


def resampled_counts(counts: Counts, resamples: int, seed: int) -> np.ndarray:
    """The (tp, pred, gold) counts per type of each resampled corpus: (resamples, 3, types)."""
    n, k = counts.tp.shape
    assert n > 0, "no sentences to resample"
    assert resamples >= 1, f"resamples must be >= 1, not {resamples}"
    rng = np.random.default_rng(seed)
    # Sentences with the same counts (most have none or one entity) are one kind: a resample is
    # then how often each kind was drawn, a far shorter vector than one per sentence.
    per_sentence = np.concatenate([counts.tp, counts.pred, counts.gold], axis=1)
    kinds, kind_of = np.unique(per_sentence, axis=0, return_inverse=True)
    kind_of, u = kind_of.reshape(-1), len(kinds)
    out = np.empty((resamples, 3 * k), np.int64)
    rows = max(1, BLOCK_DRAWS // n)
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        drawn = kind_of[rng.integers(0, n, size=(stop - start, n), dtype=np.int64)]
        offsets = (drawn + u * np.arange(stop - start)[:, None]).ravel()
        times = np.bincount(offsets, minlength=(stop - start) * u).reshape(stop - start, u)
        out[start:stop] = times @ kinds  # how often each kind was drawn . its counts
    return out.reshape(resamples, 3, k)


def bootstrap(counts: Counts, resamples: int = 1000, seed: int = 0) -> dict:
    """Percentile 95% intervals of micro precision, recall and F1, and per type, over
    `resamples` resampled corpora: {"resamples", "seed", "precision": [lo, hi], "recall",
    "f1", "per_type": {TYPE: {"precision", "recall", "f1"}}}."""
    drawn = resampled_counts(counts, resamples, seed)
    micro = scores(*drawn.sum(axis=2).T)  # each (resamples,)
    per_type = scores(drawn[:, 0], drawn[:, 1], drawn[:, 2])  # each (resamples, types)

    def interval(values: np.ndarray) -> list[float]:
        return [float(x) for x in np.percentile(values, PERCENTILES, axis=0)]

    names = ("precision", "recall", "f1")
    return {
        "resamples": resamples,
        "seed": seed,
        **{k: interval(v) for k, v in zip(names, micro, strict=True)},
        "per_type": {
            t: {k: interval(v[:, j]) for k, v in zip(names, per_type, strict=True)}
            for j, t in enumerate(counts.types)
        },
    }


def of_tags(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """`bootstrap` of the sentences' gold and predicted tags."""
    return bootstrap(sentence_counts(gold, pred), resamples, seed)


def interval_line(result: dict) -> str:
    """ "F1 0.8670 (95% CI 0.8610-0.8730)": a set's F1 and its interval, from its metrics (with
    its "f1" and "bootstrap")."""
    return with_interval("F1", result["f1"], result["bootstrap"]["f1"])


def with_interval(label: str, value: float, interval: Sequence[float]) -> str:
    """ "F1 0.8670 (95% CI 0.8610-0.8730)": the one format of a score and its interval, in
    ner-evaluate's output and on the model card."""
    lo, hi = interval
    return f"{label} {value:.4f} (95% CI {lo:.4f}-{hi:.4f})"
