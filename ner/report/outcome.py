"""What a run's end reports of its best model beyond the scores: the bootstrap intervals of its
test scores and its error analysis, and the figure of both (results.png).

The intervals (ner/report/bootstrap.py) go into the test entry of log_history.json, beside the
scores they bound, and so onto the card: `test_precision_ci`, `test_recall_ci`, `test_f1_ci`
([lo, hi]; with several evaluation sets each set's `test_<set>_f1_ci`, ..., and no interval of
their macro mean), and `test_bootstrap` ({"resamples", "seed"}). The seed is SEED, ner-evaluate's
default, so `ner-evaluate RUN --split test --bootstrap N` prints the log's interval again.
Only the test split gets one: the best epoch's validation score is the maximum over the epochs,
picked on those very sentences, and an interval around a selected maximum would claim a
precision it does not have.

The error analysis (ner/report/errors.py) is of the best model on the test split, or on
validation when the run evaluates no test split; the card shows its summary table per type
(`errors_info`), the figure its type confusion. Both are computed on every rank from the
gathered predictions (ner/evaluate.py gives each rank all of them), so they are the same on any
number of processes; rank 0 writes them.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np

from ner import atomic
from ner.report import bootstrap
from ner.report import errors as error_analysis
from ner.report.history import best_epoch, split_history

SEED = 0  # ner-evaluate --bootstrap-seed's default
SCORES = ("precision", "recall", "f1")


def test_intervals(
    results: dict[str, dict], gold: dict[str, list[list[str]]], resamples: int, named: bool
) -> dict:
    """The test entry's interval keys for `results` ({set: evaluate()'s result, with its
    "predictions"}) against `gold` ({set: tags per sentence}) from `resamples` resamples (0:
    none, {}); each set's keys are named (`test_<set>_f1_ci`) when `named`, as its scores are."""
    if not resamples:
        return {}
    keys: dict = {}
    for name, result in results.items():
        ci = bootstrap.of_tags(gold[name], result["predictions"], resamples, SEED)
        part = f"{name}_" if named else ""
        keys.update({f"test_{part}{score}_ci": ci[score] for score in SCORES})
    return {**keys, "test_bootstrap": {"resamples": resamples, "seed": SEED}}


def errors_info(split: str, sentences: dict[str, list], predictions: dict[str, list]) -> dict:
    """The card's and figure's error analysis: {"split", "sets": {set: {"summary": errors.summary,
    "confusion": [rows, columns, counts] (errors.confusion_grid)}}}, of each set's `sentences`
    (ner.data Sentences, with tokens and tags) against its `predictions` (tags per sentence)."""
    sets = {}
    for name, pred in predictions.items():
        gold, tokens = [s.tags for s in sentences[name]], [s.tokens for s in sentences[name]]
        analysis = error_analysis.analyse(gold, pred, tokens)
        sets[name] = {
            "summary": error_analysis.summary(analysis),
            "confusion": list(error_analysis.confusion_grid(analysis.confusion)),
        }
    return {"split": split, "sets": sets}


def errors_text(errors: dict, epoch: float) -> str:
    """The card's error analysis section: `errors` (errors_info) of the best model (of `epoch`),
    each set's summary table, and the figure."""
    split = errors["split"]
    where = "the test split" if split == "test" else f"{split} (the run evaluated no test split)"
    text = (
        f"The best model's (epoch {epoch:.1f}) entities on {where}, by the MUC categories of "
        "Chinchor & Sundheim as nervaluate names them (ner/report/errors.py): each gold entity "
        "is correct, of the wrong type, of a wrong boundary, wrong in both, or missed; a "
        "prediction paired with no gold entity is spurious. Rows count the gold entities of a "
        f"type (spurious: predictions). `ner-evaluate RUN --split {split} --errors` adds the "
        "type confusion and the most frequent errors."
    )
    several = len(errors["sets"]) > 1
    for name, s in errors["sets"].items():
        heading = f"{name}:\n\n" if several else ""
        text += "\n\n" + heading + error_analysis.summary_table(s["summary"])
    scores = "Test scores with their 95% intervals" if split == "test" else "Scores"
    return text + f"\n\n![{scores}, and the type confusion](results.png)"


def plot_results(
    history: list[dict], errors: dict, path: str | os.PathLike, sets: list[str] | None = None
) -> None:
    """Write results.png: left, each set's test precision, recall and F1 with their 95%
    intervals as error bars (validation scores of the best epoch, without bars, for a run with
    no test entry); right, the type confusion of `errors` (errors_info) summed over its sets, as
    a heat map (colour: the share of each gold type's row; number: entities)."""
    # Imported here, as pyplot is never: only the end of a run draws (ner-report does not).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _, evals, test, final = split_history(history)
    fig = Figure(figsize=(12, 4.8))  # no constrained layout: it doubles the drawing time
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.07, right=0.97, bottom=0.2, top=0.88, wspace=0.35)
    score_ax, confusion_ax = fig.subplots(1, 2)

    entry, prefix = (test, "test") if test is not None else (best_epoch(evals, final)[0], "eval")
    parts = [(name, f"{name}_") for name in sets or [] if f"{prefix}_{name}_f1" in entry]
    parts = parts or [("", "")]
    for k, score in enumerate(SCORES):
        x = np.arange(len(parts)) + (k - 1) * 0.2
        y = [entry[f"{prefix}_{part}{score}"] for _, part in parts]
        bounds = [entry.get(f"{prefix}_{part}{score}_ci") for _, part in parts]
        yerr = None
        if all(b is not None for b in bounds):
            yerr = np.abs(np.array(bounds, dtype=float).T - np.array(y))  # (2, sets)
        label = "F1" if score == "f1" else score
        score_ax.errorbar(x, y, yerr=yerr, fmt="o", capsize=4, label=label)
    split = "test" if test is not None else "validation"
    score_ax.set_xticks(range(len(parts)), [name or split for name, _ in parts])
    with_bars = test is not None and "test_bootstrap" in test
    score_ax.set(
        title=(
            "Test scores, 95% bootstrap intervals"
            if with_bars
            else f"{'Test' if test is not None else 'Best-epoch validation'} scores (no intervals)"
        ),
        ylabel="entity-level score",
        xlim=(-0.5, len(parts) - 0.5),
    )
    score_ax.grid(axis="y", alpha=0.3)
    score_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, frameon=False)

    rows, columns, counts = _summed_confusion(errors)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    confusion_ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (r, c), n in np.ndenumerate(counts):
        color = "white" if share[r, c] > 0.6 else "black"
        confusion_ax.text(c, r, str(n), ha="center", va="center", color=color, fontsize="small")
    confusion_ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
    confusion_ax.set_yticks(range(len(rows)), rows)
    confusion_ax.set(
        title=f"Type confusion on {errors['split']} (entities)",
        xlabel="predicted",
        ylabel="gold",
    )
    fig.suptitle("The best model's results")
    atomic.write_with(path, lambda f: fig.savefig(f, format="png", dpi=100), what="results")


def _summed_confusion(errors: dict) -> tuple[list[str], list[str], np.ndarray]:
    """The confusion grids of every set of `errors`, summed over the sets on their types."""
    total: Counter = Counter()
    for s in errors["sets"].values():
        rows, columns, counts = s["confusion"]
        for g, line in zip(rows, counts, strict=True):
            for p, n in zip(columns, line, strict=True):
                total[(g, p)] += n
    rows, columns, grid = error_analysis.confusion_grid(total)
    return rows, columns, np.array(grid, dtype=int)
