"""A run's name and its model's: `run_name` (the model card's title, <model>-finetuned-<data>)
and `model_name` (a model's own name, from a hub name or a local directory): the card, the export and
ner-report name runs so."""

from __future__ import annotations

import re
from pathlib import Path, PurePath
from typing import Any

from ner.data.corpus import configs, train_files

# Directory names that say nothing about the model in them.
GENERIC_DIRS = {"model", "models", "checkpoint", "final", "best_model", "export", "hf", "weights"}


def run_name(cfg: Any) -> str:
    """`run_name`, else <model>-finetuned-<data>: xlm-roberta-base-finetuned-wikiann-he, with
    several configurations or training files joined by "-" (wikiann-he-ar, train-extra)."""
    if cfg.run_name:
        return cfg.run_name
    model = model_name(cfg.model.name_or_path) if cfg.model.name_or_path else "tiny-xlmr"
    d = cfg.data
    files = "-".join(PurePath(f).stem for f in train_files(d))
    data = PurePath(d.name).name if d.name else files
    return f"{model}-finetuned-{data}" + "".join(f"-{c}" for c in configs(d))


def model_name(name_or_path: str) -> str:
    """A model's own name: the hub name's last part, or a local directory's name, unless that
    says nothing (`model`, a hub cache snapshot): then the hub cache's repository name, the title
    of the directory's model card (README.md's first `# name`), or the parent directory's name."""
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        return Path(name_or_path).name  # a hub name: org/name -> name
    path = path.resolve()
    if path.parent.name == "snapshots" and path.parent.parent.name.startswith("models--"):
        return path.parent.parent.name.split("--")[-1]  # the Hugging Face cache's layout
    if path.name.lower() not in GENERIC_DIRS:
        return path.name
    card = path / "README.md"
    if card.is_file():
        text = card.read_text(encoding="utf-8", errors="replace")
        title = re.search(r"^# (.+)$", text, re.M)  # the card's first heading
        if title and len(title.group(1).split()) == 1:
            return title.group(1).strip()
    return path.parent.name
