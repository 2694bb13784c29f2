"""The "Training results" table of a model card read back, for the tests that check a card against
the log history it came from.

Written from the table's markdown alone (the reference card's form: experiments/reference/
model_card.md), not from the code that renders it (ner/report/card.py), so that a card drawn
wrong cannot be read back right by the same mistake. A header becomes its log key: "Training
Loss" -> train_loss, "Epoch", "Step", "Validation Loss" -> eval_loss, any other metric label ->
eval_<label in snake case> ("Macro F1" -> eval_macro_f1).
"""

from __future__ import annotations

from typing import Any

NO_LOG = "No log"  # the Trainer's cell for an epoch with no logged training loss
FIXED = {"Training Loss": "train_loss", "Epoch": "epoch", "Step": "step"}


def column_key(header: str) -> str:
    if header in FIXED:
        return FIXED[header]
    if header == "Validation Loss":
        return "eval_loss"
    return "eval_" + header.lower().replace(" ", "_")


def parse_results_table(card_text: str) -> list[dict[str, Any]]:
    """Each row of the card's "Training results" table as {log key: number}; a "No log"
    training loss is None. A table that is missing or malformed is a ValueError."""
    lines = [line.strip() for line in card_text.splitlines()]
    start = next((i for i, line in enumerate(lines) if _cells(line)[:1] == ["Training Loss"]), None)
    if start is None:
        raise ValueError("no 'Training results' table in the card")
    keys = [column_key(header) for header in _cells(lines[start])]
    rows = []
    for number, line in enumerate(lines[start + 2 :], start=start + 3):
        if not line.startswith("|"):
            break
        cells = _cells(line)
        if len(cells) != len(keys):
            raise ValueError(f"card line {number}: expected {len(keys)} cells, got {cells}")
        row: dict[str, Any] = {}
        for key, cell in zip(keys, cells, strict=True):
            if key == "train_loss" and cell == NO_LOG:
                row[key] = None
                continue
            try:
                row[key] = int(cell) if key == "step" else float(cell)
            except ValueError:
                raise ValueError(f"card line {number}: {key} is not a number: {cell!r}") from None
        rows.append(row)
    return rows


def _cells(line: str) -> list[str]:
    if not line.startswith("|"):
        return []
    return [cell.strip() for cell in line.strip("|").split("|")]
