"""The learning-rate curve and the entity metrics, without a model."""

from __future__ import annotations

import pytest
from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

from ner.metrics import entity_metrics
from ner.optimization import build_schedule


def lr_curve(warmup: int, total: int):
    """The multiplier of the peak learning rate after `step` updates, as the loop schedules it."""
    import torch

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    return build_schedule(opt, warmup, total).lr_lambdas[0]


def test_linear_schedule_warms_up_then_decays_to_zero():
    f = lr_curve(10, 100)
    assert [f(s) for s in (0, 5, 10, 55, 100, 120)] == pytest.approx([0, 0.5, 1, 0.5, 0, 0])


def test_no_warmup_starts_at_peak_ends_at_zero():
    f = lr_curve(0, 6667)
    assert f(0) == 1.0 and f(6667) == 0.0 and f(7000) == 0.0


GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "O", "B-LOC", "I-LOC"], ["O"]]
PRED = [["B-PER", "I-PER", "O", "O"], ["O", "I-ORG", "I-ORG", "O", "B-LOC", "B-LOC"], ["B-PER"]]


def test_metrics_equal_seqeval():
    m = entity_metrics(GOLD, PRED)
    assert m["precision"] == pytest.approx(precision_score(GOLD, PRED))
    assert m["recall"] == pytest.approx(recall_score(GOLD, PRED))
    assert m["f1"] == pytest.approx(f1_score(GOLD, PRED))
    assert m["accuracy"] == pytest.approx(accuracy_score(GOLD, PRED))
    # by hand: gold entities PER, LOC, ORG, LOC; predicted PER, ORG (I- after O starts one), LOC, LOC, PER
    assert m["precision"] == pytest.approx(2 / 5) and m["recall"] == pytest.approx(2 / 4)
    assert m["per_type"]["PER"] == {
        "precision": 0.5,
        "recall": 1.0,
        "f1": pytest.approx(2 / 3),
        "support": 1,
    }
    assert m["per_type"]["LOC"]["support"] == 2


def test_metrics_refuse_misaligned_predictions():
    with pytest.raises(AssertionError, match="sentence 0"):
        entity_metrics([["O", "O"]], [["O"]])
