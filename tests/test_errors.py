"""ner.report.errors: each MUC category on its own sentence, a mixed example counted by hand,
the most-frequent order, and `ner-evaluate --errors` end to end."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from ner.report.errors import CATEGORIES, ERRORS, analyse, render

# the session's finished run (conftest.py run_dir): built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("run_dir")


def one(gold: list[str], pred: list[str]) -> Counter:
    return analyse([gold], [pred], [[f"w{i}" for i in range(len(gold))]]).counts


@pytest.mark.parametrize(
    ("gold", "pred", "category"),
    [
        (["B-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"], "correct"),
        (["B-PER", "I-PER", "O"], ["B-ORG", "I-ORG", "O"], "wrong type"),
        (["B-PER", "I-PER", "O"], ["B-PER", "O", "O"], "wrong boundary"),
        (["B-PER", "I-PER", "O"], ["O", "B-LOC", "I-LOC"], "wrong both"),
        (["B-PER", "O", "O"], ["O", "O", "O"], "missed"),
        (["O", "O", "O"], ["O", "B-LOC", "O"], "spurious"),
    ],
)
def test_each_category_on_its_own_sentence(gold, pred, category):
    assert one(gold, pred) == Counter({category: 1})


def test_a_gold_entity_split_in_two_predictions_pairs_with_the_left_piece():
    a = analyse([["B-ORG", "I-ORG", "I-ORG"]], [["B-ORG", "B-ORG", "I-ORG"]], [["a", "b", "c"]])
    assert a.counts == Counter({"wrong boundary": 1, "spurious": 1})
    assert a.errors == [
        ("wrong boundary", "ORG: a b c", "ORG: a", [0]),
        ("spurious", "", "ORG: b c", [0]),
    ]
    # Greedy, as nervaluate: the left prediction takes the gold entity, whatever its type.
    a = analyse([["B-PER", "I-PER", "O"]], [["B-LOC", "B-PER", "I-PER"]], [["a", "b", "c"]])
    assert a.counts == Counter({"wrong both": 1, "spurious": 1})
    assert a.confusion == Counter({("PER", "LOC"): 1, ("spurious", "PER"): 1})
    # A prediction over two gold entities pairs with the left one; the right one is missed.
    assert one(["B-PER", "B-LOC"], ["B-PER", "I-PER"]) == Counter(
        {"wrong boundary": 1, "missed": 1}
    )


MIXED_TOKENS = [
    ["Ada", "Lovelace", "met", "Charles", "in", "London"],
    ["the", "Royal", "Society", "of", "London", "said"],
    ["Paris", "is", "big"],
]
MIXED_GOLD = [
    ["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC"],
    ["O", "B-ORG", "I-ORG", "I-ORG", "I-ORG", "O"],
    ["B-LOC", "O", "O"],
]
MIXED_PRED = [
    ["B-PER", "I-PER", "O", "B-ORG", "O", "O"],  # correct, PER -> ORG, LOC missed
    ["O", "B-ORG", "I-ORG", "O", "B-LOC", "B-PER"],  # ORG 1-4 as ORG 1-2; LOC 4 and PER spurious
    ["B-PER", "I-PER", "O"],  # LOC 0 as PER 0-1
]


def test_mixed_example_counted_by_hand():
    a = analyse(MIXED_GOLD, MIXED_PRED, MIXED_TOKENS)
    assert a.counts == Counter({**dict.fromkeys(CATEGORIES, 1), "spurious": 2})
    assert a.per_type == {
        "PER": Counter({"correct": 1, "wrong type": 1, "spurious": 1}),
        "LOC": Counter({"missed": 1, "wrong both": 1, "spurious": 1}),
        "ORG": Counter({"wrong boundary": 1}),
    }
    assert a.confusion == Counter(
        {
            ("PER", "PER"): 1,
            ("PER", "ORG"): 1,
            ("LOC", "missed"): 1,
            ("ORG", "ORG"): 1,
            ("spurious", "LOC"): 1,
            ("spurious", "PER"): 1,
            ("LOC", "PER"): 1,
        }
    )
    assert [e[:3] for e in a.errors] == [
        ("wrong type", "PER: Charles", "ORG: Charles"),
        ("missed", "LOC: London", ""),
        ("wrong boundary", "ORG: Royal Society of London", "ORG: Royal Society"),
        ("spurious", "", "LOC: London"),
        ("spurious", "", "PER: said"),
        ("wrong both", "LOC: Paris", "PER: Paris is"),
    ]
    text = render(a)
    assert (
        "| all  | 1       | 1          | 1              | 1          | 1      | 2        |" in text
    )
    assert "| LOC              | 0   | 0   | 1   | 1      |" in text  # LOC row: PER 1, missed 1
    assert "| spurious         | 1   | 0   | 1   | 0      |" in text
    assert (
        "| 1     | spurious       | -                            | PER: said          | 1  " in text
    )


def test_most_frequent_errors_first_then_first_seen():
    tokens = [["Bob", "x"], ["Bob", "x"], ["Bob", "x"], ["Bob", "x"]]
    gold = [["O", "O"], ["B-PER", "O"], ["O", "O"], ["B-PER", "O"]]
    pred = [["O", "B-LOC"], ["O", "O"], ["B-ORG", "O"], ["O", "O"]]
    a = analyse(gold, pred, tokens)
    assert a.errors == [
        ("missed", "PER: Bob", "", [1, 3]),
        ("spurious", "", "LOC: x", [0]),
        ("spurious", "", "ORG: Bob", [2]),
    ]
    assert analyse(gold, pred, tokens, top=2).errors == a.errors[:2]


def table_after(text: str, title: str) -> list[list[str]]:
    """The rows (cells) of the markdown table that follows `title`, header and separator off."""
    lines = text.split(title, 1)[1].split("\n\n", 2)[1].splitlines()
    lines = [line for line in lines if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


@pytest.mark.slow
def test_evaluate_errors_prints_the_tables(run_dir, tmp_path, capsys):
    import json

    from ner.tools.evaluate import main

    out = tmp_path / "metrics.json"
    assert main([str(run_dir), "--errors", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    metrics = json.loads(out.read_text())
    gold = sum(r["support"] for r in metrics["per_type"].values())

    summary = table_after(text, "Entities by category")
    [total] = [r for r in summary if r[0] == "all"]
    counts = dict(zip(CATEGORIES, map(int, total[1:]), strict=True))
    assert sum(counts.values()) == gold + counts["spurious"]
    assert sum(int(c) for r in summary if r[0] != "all" for c in r[1:]) == sum(counts.values())
    confusion = table_after(text, "Type confusion")
    assert sum(int(c) for r in confusion for c in r[1:]) == gold + counts["spurious"]
    assert "Most frequent errors" in text
    frequent = table_after(text, "Most frequent errors")
    assert 0 < len(frequent) <= 20 and all(r[1] in ERRORS for r in frequent)
    assert re.search(r"errors on \w+", text)
