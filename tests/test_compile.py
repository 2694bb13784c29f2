"""trainer.compile: torch.compile'd training on the CPU computes what eager training computes."""

from __future__ import annotations

import pytest
from conftest import QUICK, train_in_process

pytestmark = pytest.mark.slow  # a compilation of the forward and backward: ~10 s of CPU


def test_compiled_training_equals_eager(tmp_path):
    # One length bucket (the demo's window, 128): every step has one shape, so the model is
    # compiled once. Dropout off: compiled dropout draws from another generator than eager's.
    common = [*QUICK, "trainer.epochs=1", "data.max_train_samples=40", "data.max_eval_samples=14"]
    common += ["optim.warmup_steps=2", "trainer.log_every=1", "model.dropout=0"]
    common += ["trainer.length_buckets=[128]", "trainer.eval_test=false", "data.cache_dir=null"]
    _, eager = train_in_process(tmp_path / "eager", [*common, "trainer.compile=false"])
    _, compiled = train_in_process(tmp_path / "compiled", [*common, "trainer.compile=true"])
    losses = [e["loss"] for e in eager if "loss" in e]
    assert len(losses) == 5 and losses[-1] < losses[0]  # 5 steps that learn something
    assert [e.get("loss") for e in compiled if "loss" in e] == pytest.approx(losses, rel=1e-5)
    [eager_eval] = [e for e in eager if "eval_loss" in e]
    [compiled_eval] = [e for e in compiled if "eval_loss" in e]
    for key in ("eval_loss", "eval_f1", "eval_accuracy", "train_loss"):
        assert compiled_eval[key] == pytest.approx(eager_eval[key], rel=1e-5), key


def test_compile_auto_graphs_one_cuda_process_and_says_why_not_elsewhere():
    from types import SimpleNamespace

    import torch

    from ner.distributed import Env
    from ner.prepare import compile_plan

    def plan(setting, device="cuda", world=1, strategy="ddp"):
        trainer = SimpleNamespace(compile=setting, strategy=strategy)
        return compile_plan(trainer, Env(world_size=world, device=torch.device(device)))

    assert plan(None)[0] == "reduce-overhead"
    assert "one CUDA graph per length bucket" in plan(None)[1]
    assert plan(None, "cpu") == (
        None,
        "eager (trainer.compile=auto: not on the CPU, where compiling costs more)",
    )
    mode, words = plan(None, world=2)
    assert mode is None and "cannot hold the collectives of 2 processes" in words
    mode, words = plan(None, strategy="fsdp")
    assert mode is None and "collectives of fsdp" in words
    assert plan(True, "cpu")[0] == "default" and plan(True, world=2)[0] == "default"
    assert plan(True)[0] == "reduce-overhead"
    assert plan(False) == (None, "eager (trainer.compile=false)")
