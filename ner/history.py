"""The log history (log_history.json): what its entries are, and which epoch it records as best.

Entries, in the Trainer's form: train entries (loss, learning_rate, epoch, step), one eval entry
per epoch (eval_<metric>, train_loss), a test entry (test_<metric>) and a final entry
(train_runtime, best_epoch, best_metric, monitor). The loop decides the best epoch by one rule
(ner/metrics.py) and records it in the final entry; readers take it from there.
"""

from __future__ import annotations

from ner.metrics import best_entry


def split_history(history: list[dict]) -> tuple[list[dict], list[dict], dict | None, dict | None]:
    """Split a log history into (train entries, eval entries by epoch, test entry, final entry).

    Train entries keep their logged order. If several test or final entries exist, the last wins
    (the history is rewritten every epoch, so the last one is the newest).
    """
    train, evals, test, final = [], [], None, None
    for entry in history:
        if "eval_f1" in entry:
            evals.append(entry)
        elif any(key.startswith("test_") for key in entry):
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
