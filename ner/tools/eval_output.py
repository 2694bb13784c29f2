"""What `ner-evaluate` prints and writes besides the metrics JSON: the summary a person reads
(one set's scores and per-type table, or one row per set and their mean) and the predictions
file (`token<TAB>gold<TAB>predicted` per word), and the saved predictions of --save-predictions
(ner/report/predictions.py): what a person reads of an evaluation, apart from how
ner/tools/evaluate.py reads the sets and scores them."""

from __future__ import annotations

import re
from pathlib import Path

from ner import metrics as registry
from ner.atomic import read_json, write_text
from ner.data.sentences import Sentence
from ner.errors import UserError
from ner.report import predictions as saved
from ner.report.tables import markdown_table


def write_predictions(path: str, sentences: list[Sentence], pred: list[list[str]]) -> None:
    """token<TAB>gold<TAB>predicted per word, a blank line after each sentence; written whole
    (ner/atomic.py), so a Ctrl-C leaves the file as it was or complete."""
    lines = []
    for sentence, tags in zip(sentences, pred, strict=True):
        for token, gold, p in zip(sentence.tokens, sentence.tags, tags, strict=True):
            # A tab or line break inside a token would break the columns and lines.
            token = re.sub(r"[\t\r\n]", " ", token)
            lines.append(f"{token}\t{gold}\t{p}\n")
        lines.append("\n")
    write_text(path, "".join(lines), "predictions file")


def saved_predictions_dir(args, loaded) -> Path | None:
    """Where --save-predictions writes (None without it), refused in one line unless the files
    would be what the run itself keeps: its best model's, on its own data, every sentence."""
    if args.save_predictions is None:
        return None
    if loaded.run_dir is None or loaded.checkpoint not in ("best", "hf"):
        raise UserError(
            f"--save-predictions: {args.target} is not a run's best model (checkpoint "
            f"{loaded.checkpoint}); the saved predictions are the best model's"
        )
    other = [f"--{k.replace('_', '-')}" for k in ("data_file", "data_name", "max_samples")]
    given = [flag for flag in other if getattr(args, flag[2:].replace("-", "_"))]
    if given:
        raise UserError(
            f"--save-predictions keeps the run's predictions on its own sentences, not with "
            f"{given[0]}; use --predictions FILE for other data"
        )
    if args.split == "train":
        raise UserError("--save-predictions: a run keeps its validation and test predictions")
    default = loaded.run_dir / saved.DIRECTORY
    return Path(args.save_predictions) if args.save_predictions else default


def save_predictions(directory: Path, split, name, loaded, sentences, results: dict) -> Path:
    """Set `name`'s predictions (its `results` of ner.evaluate.evaluate) as the run would save
    them: the epoch is the checkpoint's, or the best epoch result.json records (an export's)."""
    epoch = loaded.epoch
    if epoch is None:
        epoch = (read_json(loaded.run_dir / "result.json") or {}).get("best_epoch")
    pred = results[name]["predictions"]
    return saved.write(directory, split, name, loaded.labels, sentences, pred, epoch)


def summary(metrics: dict) -> str:
    """One set: its scores and per-type table; several: one table, a row per set and the mean."""
    if "sets" in metrics:
        return sets_summary(metrics)
    lines = [
        f"{_what(metrics)} on {_where(metrics)}: "
        f"{metrics['sentences']} sentences, {metrics['words']} words",
        "  ".join(f"{m.label} {metrics[m.name]:.4f}" for m in registry.METRICS),
        f"  {'type':<8}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}",
    ]
    for name, r in metrics["per_type"].items():
        lines.append(
            f"  {name:<8}{r['precision']:>10.4f}{r['recall']:>10.4f}{r['f1']:>10.4f}"
            f"{r['support']:>10}"
        )
    return "\n".join(lines)


def _what(metrics: dict) -> str:
    """The model scored: target (checkpoint, and the epoch and step it was saved at)."""
    at = metrics["checkpoint"]
    if metrics["epoch"] is not None:
        at += f", epoch {metrics['epoch']:g}, step {metrics['step']}"
    return f"{metrics['target']} ({at})"


def _where(metrics: dict) -> str:
    """The data and its split; a file given with --data-file is named alone (split: null)."""
    split = metrics["split"]
    return str(metrics["data"]) + (f", split {split}" if split else "")


def sets_summary(metrics: dict) -> str:
    columns = registry.METRICS
    rows = [
        [name, str(r["sentences"]), *(f"{r[m.name]:.4f}" for m in columns)]
        for name, r in metrics["sets"].items()
    ]
    n = sum(r["sentences"] for r in metrics["sets"].values())
    rows.append(["mean", str(n), *(f"{metrics[m.name]:.4f}" for m in columns)])
    header = ["set", "sentences", *(m.label for m in columns)]
    split = f", split {metrics['split']}" if metrics["split"] else ""
    return f"{_what(metrics)}{split}:\n" + markdown_table(header, rows)
