"""A small English NER set for the pretrained-model test: entities a pretrained English encoder
knows, in contexts that do not give their type away.

Half the sentences are templates whose context names the type ("X was born in Y"); the other half
are WikiANN-like fragments ("See also : X", a lone name) where only knowing the name tells a
person from a place or a company. Validation uses other names than training (no name is shared),
so a model cannot pass by memorising the training names: a model trained from scratch sees them
as unknown words, a pretrained one has met them. Deterministic (one seeded `random.Random`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

NAMES = {
    "train": {
        "PER": [
            "John Smith",
            "Mary Johnson",
            "David Brown",
            "Sarah Taylor",
            "Michael Wilson",
            "Emma Clark",
            "James Walker",
            "Laura Lewis",
            "Robert Hall",
            "Alice Young",
            "Thomas King",
            "Helen Wright",
        ],
        "LOC": [
            "London",
            "Paris",
            "Berlin",
            "Madrid",
            "Rome",
            "Vienna",
            "Chicago",
            "Boston",
            "Toronto",
            "Sydney",
            "Canada",
            "Spain",
        ],
        "ORG": [
            "Microsoft",
            "Google",
            "Toyota",
            "Nokia",
            "Oxford University",
            "Harvard University",
            "Ford",
            "Pepsi",
            "Sony",
            "Nestle",
            "Shell",
            "Honda",
        ],
    },
    "validation": {
        "PER": [
            "Peter Green",
            "Anna Baker",
            "George Adams",
            "Lucy Turner",
            "Henry Carter",
            "Kate Mitchell",
            "William Scott",
            "Jane Cooper",
            "Edward Hill",
            "Susan Ward",
        ],
        "LOC": [
            "Dublin",
            "Lisbon",
            "Prague",
            "Warsaw",
            "Oslo",
            "Seattle",
            "Denver",
            "Mexico",
            "Brazil",
            "Egypt",
        ],
        "ORG": [
            "Samsung",
            "Intel",
            "Siemens",
            "Yale University",
            "Boeing",
            "Adidas",
            "Nike",
            "Canon",
            "Unilever",
            "Nintendo",
        ],
    },
}
# Context that names the type ...
TEMPLATES = [
    "{PER} was born in {LOC} .",
    "{PER} works for {ORG} .",
    "{ORG} opened an office in {LOC} .",
    "{PER} moved to {LOC} in 1990 .",
    "{PER} joined {ORG} as an engineer .",
    "the headquarters of {ORG} are in {LOC} .",
]
# ... and context that does not.
FRAGMENTS = ["see also : {X}", "{X}", "{X} ( disambiguation )", "list of articles about {X}"]


def _tagged(template: str, names: dict, rng: random.Random) -> dict:
    tokens, tags = [], []
    for word in template.split():
        kind = word[1:-1] if word.startswith("{") else None
        if kind is None:
            tokens.append(word)
            tags.append("O")
            continue
        if kind == "X":
            kind = rng.choice(sorted(names))
        parts = rng.choice(names[kind]).split()
        tokens += parts
        tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(parts) - 1)
    return {"tokens": tokens, "ner_tags": tags}


def write_split(path: Path, split: str, n: int, seed: int = 0) -> Path:
    """n sentences of `split` (train or validation) as JSON lines in `path`."""
    rng = random.Random(f"{seed}-{split}")
    rows = [
        _tagged(rng.choice(TEMPLATES if i % 2 else FRAGMENTS), NAMES[split], rng) for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
