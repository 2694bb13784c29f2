"""Entity metrics (seqeval, default mode, like run_ner) and word accuracy.

Pure functions over label strings: one gold and one predicted tag per word of every sentence.
"""

from __future__ import annotations

from collections.abc import Sequence

from seqeval.metrics import (
    accuracy_score,
    classification_report,
    f1_score,
    precision_score,
    recall_score,
)


def entity_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """precision, recall, f1 (micro over entities), accuracy (over words) and per-type results.

    Returns {"precision", "recall", "f1", "accuracy", "per_type": {TYPE: {"precision", "recall",
    "f1", "support"}}}. An empty prediction set scores 0, not an error (seqeval's zero_division).
    """
    assert len(gold) == len(pred), f"{len(gold)} gold sentences but {len(pred)} predicted"
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        assert len(g) == len(p), f"sentence {i}: {len(g)} gold tags but {len(p)} predicted"
    gold, pred = [list(g) for g in gold], [list(p) for p in pred]
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_type = {
        name: {
            "precision": float(r["precision"]),
            "recall": float(r["recall"]),
            "f1": float(r["f1-score"]),
            "support": int(r["support"]),
        }
        for name, r in sorted(report.items())
        if not name.endswith(" avg")
    }
    return {
        "precision": float(precision_score(gold, pred, zero_division=0)),
        "recall": float(recall_score(gold, pred, zero_division=0)),
        "f1": float(f1_score(gold, pred, zero_division=0)),
        "accuracy": float(accuracy_score(gold, pred)),
        "per_type": per_type,
    }
