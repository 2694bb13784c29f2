"""The learning-rate curve and the entity metrics, without a model."""

from __future__ import annotations

import pytest
from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

from ner.metrics import entity_metrics
from ner.schedule import linear_schedule


def test_linear_schedule_matches_transformers():
    import torch
    from transformers import get_linear_schedule_with_warmup

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    ref = get_linear_schedule_with_warmup(opt, num_warmup_steps=10, num_training_steps=100)
    ours = linear_schedule(10, 100)
    for step in range(0, 101):
        assert ours(step) == pytest.approx(ref.lr_lambdas[0](step), abs=1e-12)


def test_no_warmup_starts_at_peak_ends_at_zero():
    f = linear_schedule(0, 6667)
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
