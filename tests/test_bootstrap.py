"""Bootstrap intervals over sentences (ner/report/bootstrap.py) and `ner-evaluate --bootstrap`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ner.metrics import entity_metrics
from ner.report import bootstrap
from ner.report.bootstrap import Counts, point, sentence_counts

# the session's finished run (conftest.py run_dir): built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("run_dir")

# Hand-made sentences: a right entity, a wrong type, a wrong boundary, an I- that starts an
# entity, a type change inside a span, an entity at the sentence's end, a missed and an invented
# one, a type only predicted (MISC), a sentence without entities.
GOLD = [
    ["B-PER", "I-PER", "O", "B-LOC"],
    ["O", "B-ORG", "I-ORG", "I-ORG"],
    ["I-LOC", "I-LOC", "O", "B-PER"],
    ["B-PER", "I-LOC", "O"],
    ["O", "O", "O"],
    ["B-ORG", "O", "B-PER", "I-PER"],
    ["B-LOC"],
]
PRED = [
    ["B-PER", "I-PER", "O", "B-ORG"],
    ["O", "B-ORG", "I-ORG", "O"],
    ["I-LOC", "I-LOC", "O", "B-PER"],
    ["B-PER", "I-LOC", "O"],
    ["O", "B-MISC", "O"],
    ["O", "O", "B-PER", "I-PER"],
    ["B-LOC"],
]


def test_the_sentences_counts_add_up_to_seqeval_scores():
    counts = sentence_counts(GOLD, PRED)
    assert counts.types == ("LOC", "MISC", "ORG", "PER")
    assert counts.tp.shape == (len(GOLD), 4)
    ours, theirs = point(counts), entity_metrics(GOLD, PRED)
    for key in ("precision", "recall", "f1"):
        assert ours[key] == theirs[key], key
    assert ours["per_type"].keys() == theirs["per_type"].keys()
    for name, r in theirs["per_type"].items():
        for key in ("precision", "recall", "f1"):
            assert ours["per_type"][name][key] == r[key], (name, key)
        assert counts.gold[:, counts.types.index(name)].sum() == r["support"]


# Seven sentences, two types: (tp, pred, gold) per sentence and type.
TP = np.array([[1, 0], [0, 1], [2, 0], [0, 0], [1, 1], [0, 0], [0, 3]])
PREDICTED = np.array([[1, 1], [1, 1], [2, 0], [1, 0], [1, 2], [0, 0], [0, 3]])
GOLDEN = np.array([[2, 0], [0, 1], [3, 0], [0, 1], [1, 1], [0, 0], [1, 3]])
KNOWN = Counts(("A", "B"), TP, PREDICTED, GOLDEN)


def prf(tp: int, pred: int, gold: int) -> tuple[float, float, float]:
    p = tp / pred if pred else 0.0
    r = tp / gold if gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def direct(counts: Counts, resamples: int, seed: int) -> dict:
    """The same resamples, one at a time: each a list of drawn sentences, summed by hand."""
    n, k = counts.tp.shape
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    micro, per_type = [], [[] for _ in range(k)]
    for row in draws:
        sums = [[0, 0, 0] for _ in range(k)]
        for i in row:
            for j in range(k):
                for c, a in enumerate((counts.tp, counts.pred, counts.gold)):
                    sums[j][c] += int(a[i, j])
        micro.append(prf(*(sum(s[c] for s in sums) for c in range(3))))
        for j in range(k):
            per_type[j].append(prf(*sums[j]))

    def interval(values: list[float]) -> list[float]:
        return list(np.percentile(values, [2.5, 97.5]))

    names = ("precision", "recall", "f1")
    return {
        **{m: interval([v[c] for v in micro]) for c, m in enumerate(names)},
        "per_type": {
            t: {m: interval([v[c] for v in per_type[j]]) for c, m in enumerate(names)}
            for j, t in enumerate(counts.types)
        },
    }


def assert_intervals_equal(ours: dict, theirs: dict) -> None:
    for key in ("precision", "recall", "f1"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-12), key
        for t in theirs["per_type"]:
            assert ours["per_type"][t][key] == pytest.approx(
                theirs["per_type"][t][key], abs=1e-12
            ), (t, key)


def test_the_interval_of_known_counts_is_that_of_a_direct_computation(monkeypatch):
    ours = bootstrap.bootstrap(KNOWN, 300, seed=3)
    assert (ours["resamples"], ours["seed"]) == (300, 3)
    assert ours["f1"][0] < ours["f1"][1]
    assert_intervals_equal(ours, direct(KNOWN, 300, 3))
    # Drawn in blocks of a few resamples: the same stream, the same interval.
    monkeypatch.setattr(bootstrap, "BLOCK_DRAWS", 7 * 4)
    assert bootstrap.bootstrap(KNOWN, 300, seed=3) == ours


def test_the_same_seed_gives_the_same_interval_and_another_seed_another():
    first = bootstrap.bootstrap(KNOWN, 200)
    assert first["seed"] == 0
    assert bootstrap.bootstrap(KNOWN, 200, seed=0) == first
    other = bootstrap.bootstrap(KNOWN, 200, seed=1)
    assert (other["precision"], other["recall"], other["f1"]) != (
        first["precision"],
        first["recall"],
        first["f1"],
    )


def test_identical_sentences_give_a_zero_width_interval():
    counts = sentence_counts(GOLD[:1] * 50, PRED[:1] * 50)
    result, scores = bootstrap.bootstrap(counts, 100), point(counts)
    for key in ("precision", "recall", "f1"):
        assert result[key] == pytest.approx([scores[key]] * 2, abs=1e-12)
        for t, r in scores["per_type"].items():
            assert result["per_type"][t][key] == pytest.approx([r[key]] * 2, abs=1e-12)


def test_the_interval_contains_the_point_estimate():
    gold, pred = GOLD * 20, PRED * 15 + GOLD * 5  # 140 sentences, some better predicted
    result, scores = bootstrap.of_tags(gold, pred, 500), point(sentence_counts(gold, pred))
    for key in ("precision", "recall", "f1"):
        lo, hi = result[key]
        assert lo < scores[key] < hi, key
    for t, r in scores["per_type"].items():
        lo, hi = result["per_type"][t]["f1"]
        assert lo <= r["f1"] <= hi, t


def test_zero_denominators_score_zero():
    """No predicted entity at all: precision, recall and F1 0 in every resample (seqeval's
    zero_division=0), not NaN."""
    result = bootstrap.of_tags(GOLD, [["O"] * len(g) for g in GOLD], 50)
    for key in ("precision", "recall", "f1"):
        assert result[key] == [0.0, 0.0]
    assert result["per_type"]["PER"]["f1"] == [0.0, 0.0]


def test_a_bootstrap_of_no_resamples_is_refused():
    from ner.tools.evaluate import main

    with pytest.raises(SystemExit) as exc:
        main(["run", "--bootstrap", "0"])
    assert exc.value.code == 2


@pytest.mark.slow
def test_evaluate_prints_and_writes_the_interval(run_dir, tmp_path, capsys):
    from ner.tools.evaluate import main

    out = tmp_path / "m.json"
    assert main([str(run_dir), "--bootstrap", "200", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads(out.read_text())
    ci = metrics["bootstrap"]
    assert (ci["resamples"], ci["seed"]) == (200, 0)
    lo, hi = ci["f1"]
    assert lo <= metrics["f1"] <= hi and lo < hi
    assert f"demo: F1 {metrics['f1']:.4f} (95% CI {lo:.4f}-{hi:.4f})" in printed
    assert ci["per_type"].keys() == metrics["per_type"].keys()
    assert all(len(ci[k]) == 2 for k in ("precision", "recall"))

    # Several sets: each its own interval, printed under its name.
    from ner.demo.generate import generate_demo

    files = []
    for name, part in (("news", slice(0, 20)), ("web", slice(20, 50))):
        files.append(tmp_path / f"{name}.jsonl")
        rows = [json.dumps(s, ensure_ascii=False) for s in generate_demo()["test"][part]]
        files[-1].write_text("\n".join(rows) + "\n", encoding="utf-8")
    argv = [str(run_dir), "--data-file", *map(str, files), "--bootstrap", "200", "--output", "-"]
    assert main([*argv, "--bootstrap-seed", "5"]) == 0
    captured = capsys.readouterr()
    sets = json.loads(captured.out)["sets"]
    for name in ("news", "web"):
        ci = sets[name]["bootstrap"]
        assert ci["seed"] == 5
        assert f"{name}: {bootstrap.interval_line(sets[name])}" in captured.err
