"""A process killed at any write of a checkpoint save: the resumed run pairs each epoch's record
with that epoch's weights, and leaves no temporary file behind."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from conftest import QUICK, train_in_process
from safetensors.torch import load_file

from ner import atomic, checkpoint
from ner.distributed import Env
from ner.errors import UserError

# Epoch 2 improves on epoch 1; a step checkpoint at step 30 and 60 adds step-N.pt links.
ARGS = [*QUICK, "trainer.save_every_steps=30", "trainer.keep_last=1"]


def record(path: Path, epoch: int, best_epoch: float | None, step_in_epoch: int = 0) -> dict:
    """A checkpoint as TrainState.save writes it, with one weight telling its epoch."""
    ckpt = {
        "format": checkpoint.FORMAT_VERSION,
        "model": {"w": torch.full((2,), float(epoch))},
        "labels": ["O"],
        "config": "trainer: {}\n",
        "progress": {"epoch": epoch, "step_in_epoch": step_in_epoch, "best_epoch": best_epoch},
        "optimizer": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return ckpt


def weights_only(path: Path, epoch: int) -> None:
    ckpt = record(path, epoch, float(epoch))
    del ckpt["optimizer"]
    torch.save(ckpt, path)


def test_a_record_saved_at_its_best_epoch_rewrites_an_older_best_pt(tmp_path):
    """Killed between last.pt and best.pt: last.pt's weights are the best epoch's."""
    last = tmp_path / "last.pt"
    ckpt = record(last, epoch=2, best_epoch=2.0)
    weights_only(tmp_path / "best.pt", epoch=1)
    line = checkpoint.reconcile_best(tmp_path, ckpt, last, Env())
    assert line == (
        f"{tmp_path / 'best.pt'} holds epoch 1's weights; rewritten from {last}, saved at the "
        "end of best epoch 2"
    )
    best = checkpoint.load(tmp_path / "best.pt")
    assert best["progress"]["best_epoch"] == 2.0 and best["model"]["w"].tolist() == [2.0, 2.0]
    assert "optimizer" not in best
    assert checkpoint.reconcile_best(tmp_path, ckpt, last, Env()) is None  # consistent now


def test_a_missing_best_pt_is_rewritten_from_a_record_of_its_best_epoch(tmp_path):
    last = tmp_path / "last.pt"
    ckpt = record(last, epoch=1, best_epoch=1.0)
    assert "is missing or unreadable" in checkpoint.reconcile_best(tmp_path, ckpt, last, Env())
    assert checkpoint.load(tmp_path / "best.pt")["progress"]["best_epoch"] == 1.0


def test_a_record_whose_best_weights_no_checkpoint_holds_is_refused(tmp_path):
    """Resumed from an older step checkpoint (best at epoch 1) beside a newer best.pt (epoch 3)."""
    step = tmp_path / "step-50.pt"
    ckpt = record(step, epoch=2, best_epoch=1.0, step_in_epoch=5)
    weights_only(tmp_path / "best.pt", epoch=3)
    before = (tmp_path / "best.pt").read_bytes()
    with pytest.raises(UserError) as refused:
        checkpoint.reconcile_best(tmp_path, ckpt, step, Env())
    assert str(refused.value).startswith(
        f"checkpoint {step} records its best evaluation at epoch 1, but {tmp_path / 'best.pt'} "
        "holds epoch 3's weights and no checkpoint holds epoch 1's weights"
    )
    assert (tmp_path / "best.pt").read_bytes() == before


def test_best_weights_of_another_epoch_than_the_record_are_not_used():
    best = {"progress": {"best_epoch": 1.0}}
    checkpoint.check_best(best, Path("best.pt"), 1.0)
    with pytest.raises(UserError, match="holds the weights of epoch 1.0, but the run's record"):
        checkpoint.check_best(best, Path("best.pt"), 2.0)


def test_orphan_temporaries_are_removed_and_nothing_else(tmp_path):
    keep = [tmp_path / "checkpoints" / "last.pt", tmp_path / ".lock", tmp_path / ".hydra" / "x"]
    for path in keep:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"k")
    _, tmp = tempfile.mkstemp(dir=tmp_path / "checkpoints", prefix=".last.pt.tmp")
    Path(tmp).write_bytes(b"x" * 10)
    export = Path(tempfile.mkdtemp(dir=tmp_path, prefix=".best_model.tmp"))
    (export / "model.safetensors").write_bytes(b"y" * 5)
    (tmp_path / ".best_model.old4242").mkdir()
    removed = atomic.remove_orphans(tmp_path)
    assert sorted((p.name, n) for p, n in removed) == sorted(
        [(Path(tmp).name, 10), (export.name, 5), (".best_model.old4242", 0)]
    )
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(keep)


def snapshots_of_the_improved_save(run: Path, cuts: Path, monkeypatch, at_step: int) -> list:
    """Train `run`, copying the run directory at every point of the save at `at_step` where a
    kill could stop it: each temporary created (killed while writing it), and before and after
    each rename and link. A copy is what a SIGKILL at that point leaves on disk."""
    taken: list[tuple[str, Path]] = []
    active = False

    def cut(what: str) -> None:
        if active:
            copy = cuts / str(len(taken))
            shutil.copytree(run, copy, symlinks=True)
            taken.append((what, copy))

    real_save, real_mkstemp = checkpoint.TrainState.save, atomic.tempfile.mkstemp
    real_replace, real_link = atomic.os.replace, checkpoint.os.link

    def save(self, directory, env, best_improved=False, keep_steps=0):
        nonlocal active
        active = best_improved and self.progress.global_step == at_step
        try:
            real_save(self, directory, env, best_improved, keep_steps)
        finally:
            active = False
        cut("after the save")

    def mkstemp(*args, **kwargs):
        fd_tmp = real_mkstemp(*args, **kwargs)
        cut(f"writing {Path(fd_tmp[1]).name}")
        return fd_tmp

    def replace(src, dst):
        cut(f"before renaming onto {Path(dst).name}")
        real_replace(src, dst)
        cut(f"after renaming onto {Path(dst).name}")

    def link(src, dst):
        cut(f"before linking {Path(dst).name}")
        real_link(src, dst)
        cut(f"after linking {Path(dst).name}")

    monkeypatch.setattr(checkpoint.TrainState, "save", save)
    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(atomic.os, "replace", replace)
    monkeypatch.setattr(checkpoint.os, "link", link)
    train_in_process(run, ARGS)
    monkeypatch.undo()
    return taken


def scores(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if "runtime" not in k and "per_second" not in k}


@pytest.mark.slow
def test_a_save_killed_at_any_write_resumes_to_the_uninterrupted_run(tmp_path, monkeypatch):
    ref = tmp_path / "ref"
    cuts = snapshots_of_the_improved_save(ref, tmp_path / "cuts", monkeypatch, at_step=60)
    names = [what for what, _ in cuts]
    for expected in ("writing .last.pt.tmp", "after renaming onto last.pt", "writing .best.pt"):
        assert any(n.startswith(expected) for n in names), names
    assert "after linking step-60.pt" in names
    result = json.loads((ref / "result.json").read_text())
    assert result["best_epoch"] == 2.0
    exported = load_file(ref / "best_model" / "model.safetensors")
    for what, run in cuts:
        train_in_process(run, ARGS)
        again = json.loads((run / "result.json").read_text())
        assert again["best_epoch"] == result["best_epoch"], what
        for key, value in scores(result["test"]).items():
            assert again["test"][key] == pytest.approx(value, abs=1e-6), (what, key)
        assert checkpoint.load(run / "checkpoints" / "best.pt")["progress"]["best_epoch"] == 2.0
        model = load_file(run / "best_model" / "model.safetensors")
        assert all(torch.equal(model[k], v) for k, v in exported.items()), what
        orphans = [p for p in run.rglob(".*") if ".tmp" in p.name or ".old" in p.name]
        assert orphans == [], what


@pytest.mark.slow
def test_a_kill_between_last_pt_and_best_pt_is_read_right_before_any_repair(
    tmp_path, monkeypatch, capsys
):
    # The run dies after last.pt records epoch 2 as best and before best.pt is written: until
    # a next run repairs best.pt, ner-evaluate and ner-predict read the record's best epoch
    # (last.pt's weights, saved at its end), saying so, not epoch 1's best.pt as "best".
    from ner.tools import trained

    real = checkpoint.write_best

    def killed_at_the_second_best(directory, record):
        if record["progress"]["best_epoch"] == 2.0:
            raise KeyboardInterrupt  # as a SIGKILL before best.pt is written
        real(directory, record)

    monkeypatch.setattr(checkpoint, "write_best", killed_at_the_second_best)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_in_process(run, [*QUICK, "optim.lr=0.01"])  # epoch 2 improves on epoch 1
    monkeypatch.undo()
    directory = run / "checkpoints"
    assert checkpoint.saved_best_epoch(directory / "best.pt") == 1.0
    last = checkpoint.load(directory / "last.pt")
    assert last["progress"]["best_epoch"] == 2.0
    capsys.readouterr()
    loaded = trained.load(run)
    assert loaded.path == directory / "last.pt" and loaded.epoch == 2.0
    own = loaded.model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in last["model"].items())
    err = capsys.readouterr().err
    assert "holds epoch 1's weights, but the run's record has its best evaluation at epoch 2" in err
