"""trainer.keep_checkpoints: what a finished run keeps, and what stays possible afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import QUICK, compose, eval_entries, train_in_process

from ner.distributed import Env
from ner.errors import UserError
from ner.tools.evaluate import main as evaluate
from ner.tools.report import build_rows
from ner.train import train

# its module-scoped fixture built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("retention")


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module", params=["best", "none"])
def kept_run(request, tmp_path_factory):
    keep = request.param
    run = tmp_path_factory.mktemp(f"keep-{keep}") / "run"
    args = [*QUICK, f"trainer.keep_checkpoints={keep}", "trainer.save_every_steps=20"]
    best, history = train_in_process(run, args)
    return keep, run, args, best, history


@pytest.mark.slow
def test_a_finished_run_keeps_the_checkpoints_it_was_told_to_and_says_what_it_removed(kept_run):
    keep, run, _, _, _ = kept_run
    left = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert left == (["best.pt"] if keep == "best" else [])
    assert (run / "best_model" / "model.safetensors").is_file()
    removed = "best.pt, last.pt, step-60.pt" if keep == "none" else "last.pt, step-60.pt"
    log = (run / "train.log").read_text()
    assert f"removed {removed} (" in log
    assert f"trainer.keep_checkpoints={keep}): this run can no longer be extended" in log


@pytest.mark.slow
def test_the_same_command_does_nothing_and_anything_needing_last_pt_is_refused(kept_run, capsys):
    keep, run, args, best, _ = kept_run
    before = snapshot(run)
    assert train(compose(args), Env(), run) == best
    out = capsys.readouterr().out
    assert "holds a finished run" in out and "it cannot be extended" in out
    where = f"run dir {run} holds a finished run without checkpoints/last.pt"
    refusals = [
        (["trainer.epochs=3"], "it ran trainer.epochs=2 and cannot be extended or shortened to 3"),
        (["optim.lr=0.5"], "made with another configuration (optim.lr: 0.003 -> 0.5)"),
        (["trainer.resume=never"], "with trainer.resume=never it would be overwritten"),
    ]
    for overrides, refusal in refusals:
        with pytest.raises(UserError) as refused:
            train(compose([*args, *overrides]), Env(), run)
        assert str(refused.value).startswith(where), str(refused.value)
        assert refusal in str(refused.value)
    assert snapshot(run) == before


@pytest.mark.slow
def test_ner_evaluate_and_ner_report_read_a_run_without_its_checkpoints(kept_run, capsys):
    keep, run, _, _, history = kept_run
    capsys.readouterr()
    assert evaluate([str(run), "--output", "-", "--device", "cpu"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["checkpoint"] == ("best" if keep == "best" else "hf")
    best = next(e for e in eval_entries(history) if e["epoch"] == history[-1]["best_epoch"])
    for key in ("f1", "precision", "recall", "loss"):
        assert metrics[key] == pytest.approx(best[f"eval_{key}"], abs=1e-6), key
    [row] = build_rows(run.parent)
    assert row["status"] == "finished"
