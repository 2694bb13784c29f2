"""A research change is one edit in one file: a new metric (ner/metrics.py METRICS) and a new head
(ner/heads.py HEADS), each added here by the test alone, reach everything downstream."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from conftest import QUICK, compose, run_cli, train_in_process
from torch import nn

from ner import heads, metrics
from ner.errors import UserError
from ner.tools import trained
from ner.tools.evaluate import main as evaluate_main

MACRO_F1 = metrics.Metric(
    "macro_f1", "Macro F1", True, lambda s: s["report"]["macro avg"]["f1-score"]
)


def mlp_head(config) -> nn.Module:
    return nn.Sequential(
        nn.Linear(config.hidden_size, config.hidden_size),
        nn.Tanh(),
        nn.Linear(config.hidden_size, config.num_labels),
    )


def test_an_unknown_head_is_one_line():
    from ner.run.checks import check

    # The registry's own refusal (ner/heads.py), the same line an export with that head gets.
    with pytest.raises(
        UserError, match=r"^model: head 'mlp' is not in ner/heads.py HEADS \(linear\)$"
    ):
        check(compose([*QUICK, "model.head=mlp"]))


@pytest.mark.slow
def test_a_metric_added_to_the_registry_reaches_log_card_tensorboard_report_and_evaluate(
    tmp_path, monkeypatch, capsys
):
    from card_table import parse_results_table
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ner.tools.report import build_rows

    monkeypatch.setattr(metrics, "METRICS", (*metrics.METRICS, MACRO_F1))
    run = tmp_path / "run"
    _, history = train_in_process(run, [*QUICK, "trainer.monitor=eval_macro_f1"])
    evals = [e for e in history if "eval_f1" in e]
    assert all(0 <= e["eval_macro_f1"] <= 1 for e in evals)
    test = [e for e in history if "test_f1" in e][-1]
    assert "test_macro_f1" in test
    card = (run / "README.md").read_text()
    assert "| Macro F1" in card and "- Macro F1: " in card
    rows = parse_results_table(card)
    assert [r["eval_macro_f1"] for r in rows] == [round(e["eval_macro_f1"], 4) for e in evals]
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [ev.step for ev in acc.Scalars("eval/macro_f1")] == [1, 2]
    [row] = build_rows(tmp_path, "eval_macro_f1")
    assert row["best_macro_f1"] == pytest.approx(max(e["eval_macro_f1"] for e in evals))
    assert evaluate_main([str(run), "--output", str(tmp_path / "m.json")]) == 0
    assert "Macro F1 " in capsys.readouterr().out
    assert json.loads((tmp_path / "m.json").read_text())["macro_f1"] == pytest.approx(
        max(e["eval_macro_f1"] for e in evals), abs=1e-6
    )


@pytest.mark.slow
def test_a_head_added_to_the_registry_trains_checkpoints_exports_and_loads_back(
    tmp_path, monkeypatch
):
    monkeypatch.setitem(heads.HEADS, "mlp", mlp_head)
    run = tmp_path / "run"
    _, history = train_in_process(run, [*QUICK, "model.head=mlp", "trainer.epochs=1"])
    ckpt = torch.load(run / "checkpoints/best.pt", weights_only=True)
    assert {"classifier.0.weight", "classifier.2.weight"} <= ckpt["model"].keys()
    assert json.loads((run / "best_model/config.json").read_text())["ner_head"] == "mlp"
    logged = [e for e in history if "eval_f1" in e][-1]
    for target in (run, run / "best_model"):  # the checkpoint, and the export
        assert isinstance(trained.load(target).model.classifier, nn.Sequential)
        out = tmp_path / "metrics.json"
        assert evaluate_main([str(target), "--output", str(out), "--batch-size", "7"]) == 0
        assert json.loads(out.read_text())["f1"] == pytest.approx(logged["eval_f1"], abs=1e-6)
    # A process that does not know the head refuses the export in one line.
    out = run_cli(
        [sys.executable, "-m", "ner.tools.predict", str(run / "best_model"), "דני"], tmp_path
    )
    assert out.returncode == 2
    assert out.stderr.strip() == "error: model: head 'mlp' is not in ner/heads.py HEADS (linear)"


def test_a_training_scalar_the_loop_passes_reaches_the_log_and_tensorboard(tmp_path):
    """A new training scalar (a gradient norm, say) is one edit in ner/train.py: it passes the
    value to RunLog.train, which writes it into the train entry and onto TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ner.report.runlog import RunLog

    log = RunLog(tmp_path, enabled=True)
    log.train(5, 0.25, 0.5, 1e-3, grad_norm=2.5)
    log.train(10, 0.5, 0.25, 5e-4)
    log.close()
    assert log.history == [
        {"loss": 0.5, "grad_norm": 2.5, "learning_rate": 1e-3, "epoch": 0.25, "step": 5},
        {"loss": 0.25, "learning_rate": 5e-4, "epoch": 0.5, "step": 10},
    ]
    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("train/grad_norm")] == [(5, 2.5)]
    assert [e.step for e in acc.Scalars("train/loss")] == [5, 10]
