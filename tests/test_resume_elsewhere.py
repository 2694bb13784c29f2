"""trainer.resume=PATH as a researcher uses it: never over another run, and on the checkpoint's
own tokenizer (README: "What a run directory guarantees")."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import QUICK, compose, train_in_process

from ner.distributed import Env
from ner.errors import UserError
from ner.train import train

pytestmark = pytest.mark.slow

ONE = [*QUICK, "trainer.epochs=1"]


def digests(run: Path) -> dict[str, str]:
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file()
    }


def cut_short(run: Path) -> None:
    """A run stopped after 20 steps (trainer.stop_after_steps), its last.pt at step 20."""
    args = [*QUICK, "trainer.stop_after_steps=20", "trainer.save_every_steps=10"]
    assert train(compose(args), Env(), run) is None


def test_a_resume_into_a_directory_holding_another_run_is_refused_and_writes_nothing(tmp_path):
    finished, cut = tmp_path / "finished", tmp_path / "cut"
    train_in_process(finished, ONE)
    cut_short(cut)
    before = digests(finished)
    other = cut / "checkpoints" / "last.pt"
    with pytest.raises(UserError) as refused:
        train(compose([*QUICK, f"trainer.resume={other}"]), Env(), finished)
    assert f"run dir {finished} already holds another run" in str(refused.value)
    assert f"hydra.run.dir=NEW trainer.resume={other}" in str(refused.value)
    assert digests(finished) == before  # last.pt, best.pt, best_model/, the record: untouched
    # Its own checkpoints may resume it (the README's recovery advice): not refused as another's.
    own = finished / "checkpoints" / "last.pt"
    assert train(compose([*ONE, f"trainer.resume={own}"]), Env(), finished) is not None


def test_a_run_resumed_elsewhere_goes_on_with_its_checkpoints_tokenizer(tmp_path):
    # The tiny model's tokenizer is trained on the training sentences: a checkpoint resumed in a
    # new directory on other sentences must keep its own token ids, not train new ones.
    cut, elsewhere = tmp_path / "cut", tmp_path / "elsewhere"
    cut_short(cut)
    other_data = [*QUICK, "data.max_train_samples=200"]  # other sentences: another tokenizer
    resume = f"trainer.resume={cut / 'checkpoints' / 'last.pt'}"
    train_in_process(elsewhere, [*other_data, resume])
    saved = (cut / "tokenizer" / "tokenizer.json").read_bytes()
    assert (elsewhere / "tokenizer" / "tokenizer.json").read_bytes() == saved
    assert (elsewhere / "best_model" / "tokenizer.json").read_bytes() == saved


def test_a_finished_run_whose_export_was_removed_gets_it_back_from_best_pt(tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    best, _ = train_in_process(run, ONE)
    export = run / "best_model"
    before = digests(export)
    shutil.rmtree(export)
    capsys.readouterr()
    assert train(compose(ONE), Env(), run) == best  # the same command: nothing to train
    printed = capsys.readouterr().out
    assert "nothing to do" in printed
    assert f"{export} was missing: rebuilt from {run / 'checkpoints' / 'best.pt'}" in printed
    after = digests(export)
    # The same weights, architecture and tokenizer, to the byte (tokenizer_config.json gains
    # the loader's own fields, is_local and local_files_only, as any loaded tokenizer's does).
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        assert after[name] == before[name], name
