"""What an evaluation measures, and which epoch is best: the one place for both.

`METRICS` lists the scalar metrics of an evaluation, in the reference card's column order. The
log (`eval_<name>`), TensorBoard (`eval/<name>`), the model card, the curves, `ner-report` and
`ner-evaluate` all iterate over it, so a new scalar metric is one entry here. Each is computed
from one seqeval classification report (entity-level, default mode, like run_ner) plus word
accuracy: seqeval runs once per evaluation. The loss is the exception: `ner.evaluate` sums it
while predicting.

`is_better` and `best_entry` are the one rule for the best epoch (trainer.monitor and
trainer.monitor_mode); the loop, the card, the curves and the report all use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ner.errors import UserError


@dataclass(frozen=True)
class Metric:
    name: str  # the log key is eval_<name> (test_<name> on the test split)
    label: str  # column header on the card and in reports
    higher_is_better: bool
    # From {"report": seqeval's classification_report(output_dict=True), "accuracy": word
    # accuracy, "gold", "pred"}; None for the loss, which evaluate() sums while predicting.
    compute: Callable[[dict], float] | None


METRICS: tuple[Metric, ...] = (
    Metric("loss", "Loss", False, None),
    Metric("precision", "Precision", True, lambda s: s["report"]["micro avg"]["precision"]),
    Metric("recall", "Recall", True, lambda s: s["report"]["micro avg"]["recall"]),
    Metric("f1", "F1", True, lambda s: s["report"]["micro avg"]["f1-score"]),
    Metric("accuracy", "Accuracy", True, lambda s: s["accuracy"]),
)


def names() -> list[str]:
    """The metric names, read when asked (a test may add a metric to METRICS)."""
    return [m.name for m in METRICS]


def entity_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Every computed metric of METRICS (all but the loss) and per-type results.

    Returns {name: value for each metric but the loss, "per_type": {TYPE: {"precision",
    "recall", "f1", "support"}}}. An empty prediction set scores 0, not an error (seqeval's
    zero_division).
    """
    assert len(gold) == len(pred), f"{len(gold)} gold sentences but {len(pred)} predicted"
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        assert len(g) == len(p), f"sentence {i}: {len(g)} gold tags but {len(p)} predicted"
    # Imported here: seqeval imports scikit-learn (about 2 s), which a process that never
    # evaluates (a refused config, ner-report) need not pay.
    from seqeval.metrics import accuracy_score, classification_report

    gold, pred = [list(g) for g in gold], [list(p) for p in pred]
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    scores = {"report": report, "accuracy": accuracy_score(gold, pred), "gold": gold, "pred": pred}
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
    values = {m.name: float(m.compute(scores)) for m in METRICS if m.compute is not None}
    return {**values, "per_type": per_type}


def mean_over_sets(results: dict[str, dict]) -> dict[str, float]:
    """Every metric's macro mean over named evaluation sets ({name: result}): each set weighs
    the same, whatever its size (XTREME's convention). The training log and ner-evaluate both
    report it."""
    return {key: sum(r[key] for r in results.values()) / len(results) for key in names()}


def mode_of(key: str) -> str:
    """ "max" or "min": how a metric's log key (eval_f1, eval_loss, test_f1, ...) improves."""
    matches = sorted((m for m in METRICS if key.endswith(f"_{m.name}")), key=lambda m: -len(m.name))
    if not matches:
        raise UserError(
            f"{key} names no metric: its name must end in _ and one of {', '.join(names())}"
        )
    return "max" if matches[0].higher_is_better else "min"


def is_better(value: float, best: float | None, mode: str) -> bool:
    """Does `value` improve on `best` under trainer.monitor_mode ("max" or "min")?"""
    return best is None or (value > best if str(mode) == "max" else value < best)


def best_entry(entries: Sequence[dict], monitor: str, mode: str) -> dict | None:
    """The first entry with the best value of `monitor` (ties: the earliest epoch, as the loop
    keeps the first best)."""
    best = None
    for entry in entries:
        value = entry.get(monitor)
        if isinstance(value, (int, float)) and (
            best is None or is_better(value, best[monitor], mode)
        ):
            best = entry
    return best
