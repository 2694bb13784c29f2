"""The log history read back: which entry is which, and the best epoch.

The one reader of log_history.json's entries (written by ner/report/runlog.py, whose docstring
describes them): the card, the curves, ner-report and the end of a run all ask here what counts as
an eval or a test entry, so that a new kind of entry changes one rule.
"""

from __future__ import annotations

from ner.metrics import best_entry, names


def is_eval(entry: dict) -> bool:
    """An epoch's evaluation (its eval_<metric> keys; with several sets, also each set's)."""
    return "eval_f1" in entry


def is_test(entry: dict) -> bool:
    """The test evaluation of the best weights (test_<metric>)."""
    return not is_eval(entry) and any(str(key).startswith("test_") for key in entry)


def eval_entries(history: list[dict]) -> list[dict]:
    """The eval entries, in logged order (a history being written may still lack later epochs)."""
    return [entry for entry in history if is_eval(entry)]


def eval_sets_in(entry: dict) -> list[str]:
    """The evaluation sets an eval entry holds keys for (a run of several sets), in order."""
    candidates = [k[5:-3] for k in entry if k.startswith("eval_") and k.endswith("_f1")]
    return [s for s in candidates if s and all(f"eval_{s}_{m}" in entry for m in names())]


def split_history(history: list[dict]) -> tuple[list[dict], list[dict], dict | None, dict | None]:
    """Split a log history into (train entries, eval entries by epoch, test entry, final entry).

    Train entries keep their logged order. If several test or final entries exist, the last wins
    (the history is rewritten every epoch, so the last one is the newest).
    """
    train, evals, test, final = [], [], None, None
    for entry in history:
        if is_eval(entry):
            evals.append(entry)
        elif is_test(entry):
            test = entry
        elif "best_epoch" in entry or "train_runtime" in entry:
            final = entry
        elif "loss" in entry:
            train.append(entry)
    evals.sort(key=lambda e: e["epoch"])
    epochs = [e["epoch"] for e in evals]
    duplicated = sorted({e for e in epochs if epochs.count(e) > 1})
    if duplicated:
        raise ValueError(f"log history has several eval entries for epoch(s) {duplicated}")
    return train, evals, test, final


def best_epoch(evals: list[dict], final: dict | None) -> tuple[dict, str, float]:
    """Return (eval entry of the best epoch, monitored key, its value).

    The final entry names the best epoch and the monitored metric; a history without one (a run
    still in progress) falls back to the epoch with the highest eval_f1.
    """
    if final is not None and "best_epoch" in final:
        monitor = final.get("monitor", "eval_f1")
        for entry in evals:
            if entry["epoch"] == final["best_epoch"]:
                return entry, monitor, float(final.get("best_metric", entry[monitor]))
        raise ValueError(
            f"final log entry names best_epoch {final['best_epoch']}, "
            "but the log history has no eval entry for that epoch"
        )
    entry = best_entry(evals, "eval_f1", "max")
    return entry, "eval_f1", float(entry["eval_f1"])
