"""ner/report/outcome.py: the test entry's intervals, the card's error analysis and results.png,
on hand-made data and on the session's finished demo run (conftest's run_dir)."""

from __future__ import annotations

import json

import pytest
from test_card import make_history, make_info

from ner.data.sentences import Sentence
from ner.report import bootstrap, outcome
from ner.report.card import render_card
from ner.report.errors import CATEGORIES

# the session's finished run (conftest.py run_dir): built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("run_dir")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

GOLD = [
    ["B-PER", "I-PER", "O", "B-LOC"],
    ["O", "B-ORG", "O"],
    ["B-LOC", "O", "B-PER"],
    ["O", "O"],
    ["B-ORG", "I-ORG", "O", "B-PER"],
]
PRED = [
    ["B-PER", "I-PER", "O", "B-ORG"],  # correct, wrong type
    ["O", "O", "O"],  # missed
    ["B-LOC", "I-LOC", "B-PER"],  # wrong boundary, correct
    ["B-LOC", "O"],  # spurious
    ["B-ORG", "I-ORG", "O", "B-PER"],  # correct, correct
]


def sentences(tags: list[list[str]]) -> list[Sentence]:
    return [Sentence([f"w{i}" for i in range(len(t))], list(t), "test") for t in tags]


def test_the_intervals_are_the_bootstraps_of_the_predictions():
    results = {"demo": {"predictions": PRED}}
    keys = outcome.test_intervals(results, {"demo": GOLD}, 300, named=False)
    ci = bootstrap.of_tags(GOLD, PRED, 300, seed=0)
    assert keys == {
        "test_precision_ci": ci["precision"],
        "test_recall_ci": ci["recall"],
        "test_f1_ci": ci["f1"],
        "test_bootstrap": {"resamples": 300, "seed": 0},
    }
    named = outcome.test_intervals(
        {"he": results["demo"], "ar": {"predictions": GOLD}}, {"he": GOLD, "ar": GOLD}, 300, True
    )
    assert named["test_he_f1_ci"] == ci["f1"] and named["test_ar_f1_ci"] == [1.0, 1.0]
    assert "test_f1_ci" not in named  # the macro mean has none
    assert outcome.test_intervals(results, {"demo": GOLD}, 0, named=False) == {}


def with_intervals(history: list[dict]) -> list[dict]:
    [test] = [e for e in history if "test_f1" in e]
    test.update(
        test_precision_ci=[0.75, 0.8312],
        test_recall_ci=[0.7, 0.78],
        test_f1_ci=[0.72049, 0.80001],
        test_bootstrap={"resamples": 1000, "seed": 0},
    )
    return history


def test_the_card_gives_the_test_f1_with_its_interval():
    card = render_card(with_intervals(make_history()), make_info())
    assert (
        "- F1: 0.7642\n- Accuracy: 0.9300\n\nWith their 95% intervals (percentile bootstrap over the test sentences, "
        "1000 resamples, seed 0; `ner-evaluate RUN --split test --bootstrap 1000` prints them "
        "again):\n- F1 0.7642 (95% CI 0.7205-0.8000), precision 0.7900 (95% CI 0.7500-0.8312), "
        "recall 0.7400 (95% CI 0.7000-0.7800)\n\n## Per-type results"
    ) in card
    # A log from before the intervals (or trainer.bootstrap=0) renders as it always did.
    assert "95% CI" not in render_card(make_history(), make_info())


def test_the_card_gives_each_sets_interval():
    history = make_history()
    [test] = [e for e in history if "test_f1" in e]
    for name, f1 in (("he", 0.8), ("ar", 0.6)):
        for key in ("precision", "recall", "f1", "loss", "accuracy"):
            test[f"test_{name}_{key}"] = f1
        test.update({f"test_{name}_{k}_ci": [f1 - 0.05, f1 + 0.05] for k in outcome.SCORES})
    test["test_bootstrap"] = {"resamples": 200, "seed": 0}
    card = render_card(history, make_info(eval_sets=["he", "ar"]))
    assert "\n- he: F1 0.8000 (95% CI 0.7500-0.8500), precision 0.8000 (95% CI" in card
    assert "\n- ar: F1 0.6000 (95% CI 0.5500-0.6500), precision" in card


def test_the_error_section_counts_every_gold_entity_once(tmp_path):
    errors = outcome.errors_info("test", {"demo": sentences(GOLD)}, {"demo": PRED})
    summary = errors["sets"]["demo"]["summary"]
    assert summary["all"] == {
        "correct": 4,
        "wrong type": 1,
        "wrong boundary": 1,
        "wrong both": 0,
        "missed": 1,
        "spurious": 1,
    }
    gold_entities = 7
    assert sum(summary["all"][c] for c in CATEGORIES if c != "spurious") == gold_entities
    assert [t for t in summary if t != "all"] == ["LOC", "ORG", "PER"]
    card = render_card(make_history(), make_info(errors=errors))
    section = card.split("## Error analysis\n\n")[1].split("\n### Framework versions")[0]
    assert section.startswith("The best model's (epoch 2.0) entities on the test split, by the")
    assert (
        "| all  | 4       | 1          | 1              | 0          | 1      | 1        |"
        in section
    )
    assert section.endswith(
        "![Test scores with their 95% intervals, and the type confusion](results.png)\n"
    )
    assert "## Error analysis" not in render_card(make_history(), make_info())

    for history in (with_intervals(make_history()), make_history()[:-2]):  # no test entry
        path = tmp_path / "results.png"
        outcome.plot_results(history, errors, path)
        assert path.read_bytes()[:8] == PNG_MAGIC
        path.unlink()


@pytest.mark.slow
def test_a_finished_run_logs_the_interval_ner_evaluate_reproduces(run_dir, tmp_path):
    """The session's demo run: its test entry's interval is ner-evaluate's bootstrap (seed 0)
    of best.pt's test predictions; its card's error table counts every gold test entity once;
    results.png is written."""
    from ner.tools.evaluate import main

    history = json.loads((run_dir / "log_history.json").read_text())
    [test] = [e for e in history if "test_f1" in e]
    out = tmp_path / "test.json"
    assert main([str(run_dir), "--split", "test", "--bootstrap", "1000", "--output", str(out)]) == 0
    again = json.loads(out.read_text())
    assert again["f1"] == test["test_f1"]
    assert [again["bootstrap"][k] for k in outcome.SCORES] == [
        test[f"test_{k}_ci"] for k in outcome.SCORES
    ]
    assert test["test_bootstrap"] == {"resamples": 1000, "seed": 0}

    card = (run_dir / "README.md").read_text(encoding="utf-8")
    lo, hi = test["test_f1_ci"]
    assert f"- F1 {test['test_f1']:.4f} (95% CI {lo:.4f}-{hi:.4f}), precision" in card
    assert_error_section(run_dir, "the test split", test["test_per_type"])


def assert_error_section(run_dir, where: str, per_type: dict) -> None:
    """The card of a finished run analyses the errors on `where`, and its "all" row counts each
    gold entity of `per_type` (the log's per-type scores with their support) once; the run drew
    results.png. (tests/test_train_e2e.py calls it on a run without a test split.)"""
    section = (run_dir / "README.md").read_text(encoding="utf-8").split("## Error analysis")[1]
    assert f"entities on {where}, by the MUC categories" in section
    [all_row] = [line for line in section.splitlines() if line.startswith("| all")]
    counts = [int(c) for c in all_row.strip("|").split("|")[1:]]
    assert sum(counts[:5]) == sum(t["support"] for t in per_type.values())  # correct ... missed
    assert (run_dir / "results.png").read_bytes()[:8] == PNG_MAGIC
