"""Evaluation: the fast path (length-sorted batches, argmax on the device, only scored ids moved)
gives exactly what the plain path gives (one sentence at a time, full logits to the host)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import QUICK, compose, train_in_process

# its module-scoped fixture built once, on one worker (--dist loadgroup)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("evaluate")]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from ner.distributed import Env
    from ner.prepare import prepare

    run_dir = tmp_path_factory.mktemp("eval")
    cfg = compose([*QUICK, "model.max_length=24", "model.window_stride=4"])  # some windows
    run = prepare(cfg, Env(), run_dir, lambda line: None)
    torch.manual_seed(0)
    with torch.no_grad():  # a model whose predictions are not all "O"
        for p in run.model.classifier.parameters():
            p.normal_(0, 2.0)
    return run


def plain_metrics(run) -> dict:
    from ner.features import IGNORE, gather_word_predictions
    from ner.metrics import entity_metrics

    [only] = run.eval_sets
    feats, gold = only.features["validation"], only.gold["validation"]
    run.model.eval()
    preds, loss_sum, n = [], 0.0, 0
    with torch.no_grad():
        for f in feats:
            ids = torch.tensor([f["input_ids"]])
            labels = torch.tensor(f["labels"])
            logits = run.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].cpu()
            scored = labels != IGNORE
            loss_sum += F.cross_entropy(logits[scored], labels[scored], reduction="sum").item()
            n += int(scored.sum())
            preds.append(logits.argmax(-1)[scored].tolist())
    words = gather_word_predictions(feats, preds, len(gold))
    tags = [[run.labels[i] for i in s] for s in words]
    return {"loss": loss_sum / n, **entity_metrics(gold, tags), "predictions": tags}


def test_fast_path_equals_plain_path(prepared):
    from ner.batching import Collator
    from ner.distributed import Env
    from ner.evaluate import evaluate

    plain = plain_metrics(prepared)
    assert 0 < plain["f1"] < 1  # a meaningful comparison: some entities right, some wrong
    for batch_size in (1, 7, 64):
        fast = evaluate(
            prepared.model,
            prepared.eval_sets[0].features["validation"],
            prepared.eval_sets[0].gold["validation"],
            prepared.labels,
            batch_size,
            Collator(prepared.tokenizer.pad_token_id, 8),
            Env(),
        )
        assert fast["predictions"] == plain["predictions"]
        for key in ("precision", "recall", "f1", "accuracy"):
            assert fast[key] == plain[key], key
        assert fast["loss"] == pytest.approx(plain["loss"], rel=1e-5)


def test_early_stopping_after_patience(tmp_path, monkeypatch):
    # Nothing improves after epoch 1 (a contradictory monitor_mode, which did this before, is
    # refused now): the loop's one rule is told so.
    monkeypatch.setattr("ner.checkpoint.is_better", lambda value, best, mode: best is None)
    _, history = train_in_process(
        tmp_path,
        [
            *QUICK,
            "trainer.epochs=5",
            "trainer.monitor=eval_loss",
            "trainer.early_stopping_patience=2",
        ],
    )
    evals = [e for e in history if "eval_f1" in e]
    assert [e["epoch"] for e in evals] == [1.0, 2.0, 3.0]
    assert history[-1]["best_epoch"] == 1.0 and history[-1]["monitor"] == "eval_loss"
    assert "early stopping" in (tmp_path / "train.log").read_text()


def test_buckets_and_one_transfer_per_set(prepared, monkeypatch):
    # Padded to buckets with filler rows, the predictions and scores are the plain path's; the
    # predictions stay on the device and leave it once for the whole set, whatever the batches.
    from ner.batching import Collator
    from ner.distributed import Env
    from ner.evaluate import evaluate

    [only] = prepared.eval_sets
    pad = prepared.tokenizer.pad_token_id
    plain = plain_metrics(prepared)
    reads = []
    for name in ("cpu", "item", "tolist", "numpy"):
        method = getattr(torch.Tensor, name)
        monkeypatch.setattr(
            torch.Tensor,
            name,
            lambda t, *a, _m=method, _n=name, **k: reads.append(_n) or _m(t, *a, **k),
        )
    for batch_size in (1, 5):  # 61 sentences: 61 batches, or 13 with a last one of 1 filled
        reads.clear()
        fast = evaluate(
            prepared.model,
            only.features["validation"],
            only.gold["validation"],
            prepared.labels,
            batch_size,
            Collator(pad, 8, buckets=(8, 16, 24)),
            Env(),
        )
        assert reads == ["cpu", "numpy"]  # one transfer of the set's predictions
        assert fast["predictions"] == plain["predictions"]
        for key in ("precision", "recall", "f1", "accuracy"):
            assert fast[key] == plain[key], key
        assert fast["loss"] == pytest.approx(plain["loss"], rel=1e-6)
