"""Sharded checkpoints end to end (torchrun, gloo, the tiny model): an FSDP run cut mid-epoch
resumes to the metrics of one never stopped, on its 2 processes and on 1 (DCP reshards)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import QUICK, eval_entries, torchrun, train_in_process

from ner import atomic

# its module-scoped fixture built once, on one worker (--dist loadgroup)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fsdp_resume")]

# 30 steps an epoch at global batch 8; a step checkpoint every 15 steps (step-N.pt, pruned to
# one); the cut at step 45, in the middle of epoch 2. Dropout off: a resume on another number of
# processes cannot restore the RNG streams of ranks that no longer exist.
ARGS = [
    *QUICK,
    "model.dropout=0.0",
    "trainer.eval_test=false",
    "trainer.save_every_steps=15",
]
FSDP = [*ARGS, "trainer.strategy=fsdp", "trainer.batch_size=4"]
CUT = 45


def numbers(entry: dict, prefix: str = "") -> dict[str, float]:
    """An entry's numbers by their path (eval_per_type/LOC/f1), timing left out."""
    out = {}
    for k, v in entry.items():
        if "runtime" in k or "per_second" in k:
            continue
        if isinstance(v, dict):
            out.update(numbers(v, f"{prefix}{k}/"))
        elif isinstance(v, (int, float)):
            out[f"{prefix}{k}"] = v
    return out


def scores(run: Path) -> tuple[list[dict], dict]:
    """The run's evaluations and its final entry, as numbers."""
    history = json.loads((run / "log_history.json").read_text())
    final = json.loads((run / "result.json").read_text())["final"]
    return [numbers(e) for e in eval_entries(history)], numbers(final)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One FSDP run never stopped, one cut at step CUT (its directory copied before resuming)."""
    root = tmp_path_factory.mktemp("fsdp")
    done = {}
    for name, extra in (("ref", []), ("cut", [f"trainer.stop_after_steps={CUT}"])):
        out = torchrun(2, [*FSDP, *extra, f"hydra.run.dir={root / name}"], cwd=root)
        assert out.returncode == 0, out.stderr[-3000:]
        done[name] = root / name
    shutil.copytree(root / "cut", root / "cut-on-one", symlinks=True)
    done["cut-on-one"] = root / "cut-on-one"
    return done


def test_a_cut_fsdp_run_leaves_one_sharded_checkpoint(runs):
    directory = runs["cut"] / "checkpoints"
    last = torch.load(directory / "last.pt", weights_only=True)
    assert last["progress"]["global_step"] == CUT and last["progress"]["step_in_epoch"] == 15
    assert "model" not in last and len(last["rng"]) == 2
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["best.pt", "last.pt", f"step-{CUT}.pt", last["shards"]]
    )
    assert sorted(p.name for p in (directory / last["shards"]).iterdir()) == [
        ".metadata", "__0_0.distcp", "__1_0.distcp",
    ]  # fmt: skip
    assert not [p for p in runs["cut"].rglob(".*") if atomic.ORPHAN.fullmatch(p.name)]


def test_the_cut_run_resumed_on_its_processes_ends_as_the_run_never_stopped(runs):
    cut = runs["cut"]
    out = torchrun(2, [*FSDP, f"hydra.run.dir={cut}"], cwd=cut.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"resuming after step {CUT}" in out.stdout
    (ref_evals, ref_final), (evals, final) = scores(runs["ref"]), scores(cut)
    assert final == pytest.approx(ref_final, abs=1e-6)
    assert len(evals) == 2
    for a, b in zip(evals, ref_evals, strict=True):
        assert a.keys() == b.keys() and a == pytest.approx(b, abs=1e-6)


def test_the_2_process_checkpoint_resumes_on_1_process_at_the_same_global_batch(runs, capsys):
    """DCP reshards the 2 ranks' shards onto 1; the RNG streams of rank 1 have no process to
    go to (one line says so), so dropout is off; sums over 8 sentences on one rank round
    otherwise than over 2 x 4: the tolerance of 2 processes against 1 (tests/test_distributed.py)."""
    run = runs["cut-on-one"]
    _, history = train_in_process(run, [*FSDP, "trainer.batch_size=8"])
    assert "checkpoint from 2 processes resumed on 1" in capsys.readouterr().err
    ref_evals, _ = scores(runs["ref"])
    for a, b in zip([numbers(e) for e in eval_entries(history)], ref_evals, strict=True):
        for key in ("eval_loss", "eval_precision", "eval_recall", "eval_f1", "eval_accuracy"):
            assert a[key] == pytest.approx(b[key], abs=1e-4), key
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
