"""Model card (README.md) of a run, written from its own log history.

The card keeps the form of the reference card (experiments/reference/model_card.md, the Hugging
Face Trainer's card): YAML front matter, the final evaluation results, the hyperparameter list, a
per-epoch "Training results" table and the framework versions. To that it adds the best epoch,
test results (with their bootstrap intervals when the log has them), per-entity-type scores and
the best model's error analysis (ner/report/outcome.py). Every number on the card is read from
the history or from `info`; nothing is computed that the run did not log, so a card can be
checked against the `log_history.json` it came from (the tests read its table back:
tests/card_table.py).
"""

from __future__ import annotations

from typing import Any

import yaml

from ner import metrics
from ner.data.corpus import as_list
from ner.report.bootstrap import with_interval
from ner.report.history import best_epoch, split_history
from ner.report.outcome import errors_text
from ner.report.tables import markdown_table


def results_columns() -> list[tuple[str, str]]:
    """(header, log key) of the "Training results" table, in the reference card's order: the
    training loss, the epoch and step, then every metric of ner.metrics.METRICS."""
    scores = [
        (f"Validation {m.label}" if m.name == "loss" else m.label, f"eval_{m.name}")
        for m in metrics.METRICS
    ]
    return [("Training Loss", "train_loss"), ("Epoch", "epoch"), ("Step", "step"), *scores]


def summary_metrics() -> list[tuple[str, str]]:
    """(label, metric name) of the summary lists and of the model-index metrics."""
    return [(m.label, m.name) for m in metrics.METRICS]


NO_LOG = "No log"  # what the Trainer writes for an epoch with no logged training loss
MORE_INFO = "More information needed"


def render_card(history: list[dict], info: dict) -> str:
    """Render the model card of a run as markdown with YAML front matter.

    `info` holds what the history does not: model_name, base_model, encoder (its family, e.g.
    BERT), dataset_name,
    dataset_config, hyperparameters (ordered), versions, and optionally data_summary, command,
    eval_sets (the names of a run's several evaluation sets: the plain validation and test
    columns are then their macro mean, and each set has its own table), and errors (the best
    model's error analysis, ner/report/outcome.errors_info; without it the card has no such
    section).
    """
    train, evals, test, final = split_history(history)
    if not evals:
        raise ValueError(
            "log history has no eval entry (no entry with 'eval_f1'): "
            "a model card needs at least one finished epoch"
        )
    last = evals[-1]
    best, monitor, best_value = best_epoch(evals, final)
    dataset, config = info["dataset_name"], _configs(info.get("dataset_config"))
    on_dataset = f"the {dataset} dataset" + (f" ({config} configuration)" if config else "")
    sets = info.get("eval_sets") or []
    on_sets = (
        f"its evaluation sets ({', '.join(sets)}), as the macro mean over them"
        if sets
        else "the evaluation set"
    )

    parts = [
        _front_matter(info, last),
        f"# {info['model_name']}",
        f"This model starts from `{info['base_model']}` and was trained on {on_dataset}.\n"
        f"It achieves the following results on {on_sets}:\n" + _metric_list(last, "eval"),
        "## Model description",
        f"Encoder: {info['encoder']}, with a token-classification head, "
        "trained with the `ner` project's PyTorch training loop." + _entity_types(last),
        "## Intended uses & limitations",
        f"Named-entity recognition in text like that of {on_dataset}. The scores on this card "
        "are entity-level (seqeval) on that dataset's splits; they say nothing about other "
        "domains or languages.",
        "## Training and evaluation data",
        info.get("data_summary") or MORE_INFO,
        "## Training procedure",
        _hyperparameters(info),
        "### Training results",
        _results_table(evals)
        + (f"\n\nValidation columns: the macro mean over {', '.join(sets)}." if sets else ""),
        "## Best epoch",
        _best_epoch_text(best, monitor, best_value, final),
    ]
    if sets:
        parts += ["## Results per evaluation set", _per_set_text(best, test, sets)]
    if test is not None:
        parts += [
            "## Test results",
            f"Evaluated on the test split (log entry at epoch {test['epoch']:.1f}, "
            f"step {int(test['step'])}):\n" + _metric_list(test, "test") + _intervals(test, sets),
        ]
    parts += ["## Per-type results", _per_type_text(last, test, sets)]
    if info.get("errors"):
        parts += ["## Error analysis", errors_text(info["errors"], best["epoch"])]
    parts += ["### Framework versions", _versions(info)]
    return "\n\n".join(parts) + "\n"


def without_front_matter(card: str) -> str:
    """The card's markdown after its YAML front matter, for viewers that do not read front
    matter (TensorBoard's Text tab would show it as one paragraph of YAML)."""
    if not card.startswith("---\n"):
        return card
    end = card.index("\n---\n", 3)  # the front matter is YAML: a line "---" cannot occur in it
    return card[end + len("\n---\n") :].lstrip("\n")


def _configs(config) -> str | None:
    """A dataset configuration, or several ("he, ar"), as text."""
    return ", ".join(as_list(config)) or None


def _front_matter(info: dict, last: dict) -> str:
    dataset, config = info["dataset_name"], _configs(info.get("dataset_config"))
    dataset_entry: dict[str, Any] = {"name": dataset, "type": dataset}
    if config:
        dataset_entry.update(config=config, split="validation", args=config)
    else:
        dataset_entry.update(split="validation")
    meta = {
        "tags": ["generated_by_ner", "token-classification"],
        "datasets": [dataset],
        "metrics": ["precision", "recall", "f1", "accuracy"],
        "model-index": [
            {
                "name": info["model_name"],
                "results": [
                    {
                        "task": {"name": "Token Classification", "type": "token-classification"},
                        "dataset": dataset_entry,
                        # The scores, then the loss; float(): safe_dump refuses numpy.
                        "metrics": [
                            {"name": label, "type": key, "value": float(last[f"eval_{key}"])}
                            for label, key in sorted(
                                summary_metrics(), key=lambda m: m[1] == "loss"
                            )
                        ],
                    }
                ],
            }
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---"


def _metric_list(entry: dict, prefix: str) -> str:
    return "\n".join(
        f"- {label}: {entry[f'{prefix}_{key}']:.4f}" for label, key in summary_metrics()
    )


def _intervals(test: dict, sets: list[str]) -> str:
    """The test scores' 95% intervals (ner/report/outcome.py), each set's with several sets;
    "" for a log without them (a run made before they were logged, trainer.bootstrap=0)."""
    if "test_bootstrap" not in test:
        return ""
    lines = [
        f"- {name + ': ' if name else ''}"
        + ", ".join(
            with_interval(label, test[f"test_{part}{key}"], test[f"test_{part}{key}_ci"])
            for label, key in (("F1", "f1"), ("precision", "precision"), ("recall", "recall"))
        )
        for name, part in ([(n, f"{n}_") for n in sets] if sets else [("", "")])
        if f"test_{part}f1_ci" in test
    ]
    how = test["test_bootstrap"]
    return (
        f"\n\nWith their 95% intervals (percentile bootstrap over the test sentences, "
        f"{how['resamples']} resamples, seed {how['seed']}; `ner-evaluate RUN --split test "
        f"--bootstrap {how['resamples']}` prints them again):\n" + "\n".join(lines)
    )


def _entity_types(entry: dict) -> str:
    types = list(entry.get("eval_per_type") or {})
    return f" Entity types: {', '.join(types)} (IOB2 tags)." if types else ""


def _hyperparameters(info: dict) -> str:
    lines = [
        "### Training hyperparameters",
        "",
        "The following hyperparameters were used during training:",
    ]
    lines += [f"- {key}: {value}" for key, value in info["hyperparameters"].items()]
    if info.get("command"):
        lines += ["", "Launch command:", "", "```bash", info["command"], "```"]
    return "\n".join(lines)


def _results_table(evals: list[dict]) -> str:
    rows = []
    for entry in evals:
        train_loss = entry.get("train_loss")
        rows.append(
            [
                NO_LOG if train_loss is None else f"{train_loss:.4f}",
                f"{entry['epoch']:.1f}",
                str(int(entry["step"])),
                *(f"{entry[key]:.4f}" for _, key in results_columns()[3:]),
            ]
        )
    return markdown_table([h for h, _ in results_columns()], rows)


def _best_epoch_text(best: dict, monitor: str, value: float, final: dict | None) -> str:
    how = (
        f"by `{monitor}`"
        if final is not None and "best_epoch" in final
        else "by `eval_f1` (the run wrote no final log entry yet)"
    )
    text = (
        f"Best epoch {how}: epoch {best['epoch']:.1f} (step {int(best['step'])}), "
        f"{monitor} = {value:.4f}. Its validation results:\n" + _metric_list(best, "eval")
    )
    if final is not None and "train_runtime" in final:
        text += f"\n\nTraining time: {final['train_runtime']:.1f} s"
        if "train_samples_per_second" in final:
            text += f" ({final['train_samples_per_second']:.1f} samples/s)"
        text += "."
    return text


def _per_type_table(per_type: dict) -> str:
    rows = [
        [
            name,
            f"{scores['precision']:.4f}",
            f"{scores['recall']:.4f}",
            f"{scores['f1']:.4f}",
            str(int(scores["support"])),
        ]
        for name, scores in per_type.items()
    ]
    return markdown_table(["Type", "Precision", "Recall", "F1", "Support"], rows)


def _per_set_table(entry: dict, prefix: str, sets: list[str]) -> str:
    """Rows: each set that has results in `entry`, then their mean; columns: every metric."""
    rows = [
        [name, *(f"{entry[f'{prefix}_{name}_{m.name}']:.4f}" for m in metrics.METRICS)]
        for name in sets
        if f"{prefix}_{name}_f1" in entry
    ]
    rows.append(["mean", *(f"{entry[f'{prefix}_{m.name}']:.4f}" for m in metrics.METRICS)])
    return markdown_table(["Set", *(m.label for m in metrics.METRICS)], rows)


def _per_set_text(best: dict, test: dict | None, sets: list[str]) -> str:
    """XTREME-style tables: each evaluation set at the best epoch, and on its test split."""
    text = f"Validation, best epoch {best['epoch']:.1f}:\n\n" + _per_set_table(best, "eval", sets)
    if test is not None:
        text += "\n\nTest (sets with a test split):\n\n" + _per_set_table(test, "test", sets)
    return text


def _per_type_text(last: dict, test: dict | None, sets: list[str] | None = None) -> str:
    """Per-type tables of the last epoch and the test, for each set of a several-set run."""
    parts = [f"{name}_" for name in sets] if sets else [""]
    blocks = []
    for part in parts:
        named = f" ({part[:-1]})" if part else ""
        per_type = last.get(f"eval_{part}per_type")
        where = f"Validation{named}, epoch {last['epoch']:.1f}"
        if per_type:
            blocks.append(f"{where}:\n\n" + _per_type_table(per_type))
        else:
            blocks.append(f"{where}: per-type scores were not logged.")
        if test is not None and (not part or f"test_{part}f1" in test):  # sets with a test
            if test.get(f"test_{part}per_type"):
                blocks.append(f"Test{named}:\n\n" + _per_type_table(test[f"test_{part}per_type"]))
            else:
                blocks.append(f"Test{named}: per-type scores were not logged.")
    return "\n\n".join(blocks)


def _versions(info: dict) -> str:
    return "\n".join(f"- {pkg} {version}" for pkg, version in info["versions"].items())
