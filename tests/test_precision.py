"""trainer.precision is what runs: bf16 autocasts on the CPU too; fp16 on the CPU is refused."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from conftest import CONF, QUICK, compose, run_cli, train_in_process

from ner.errors import UserError
from ner.precision import autocast
from ner.run.precheck import precheck

CPU = torch.device("cpu")
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="device=auto means cuda here")
FP16_ON_CPU = (
    "config: trainer.precision=fp16 needs a CUDA device and this run is on the CPU "
    "(trainer.device={}); use trainer.precision=bf16 or fp32"
)


def test_bf16_autocasts_the_forward_pass_on_the_cpu_and_fp32_does_not():
    layer = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with autocast(CPU, "bf16"):
        assert layer(x).dtype == torch.bfloat16
    with autocast(CPU, "fp32"):
        assert layer(x).dtype == torch.float32


def test_fp16_on_the_cpu_is_refused_in_one_line_before_any_work():
    assert precheck(["trainer.precision=fp16", "trainer.device=cpu"], str(CONF)) == (
        FP16_ON_CPU.format("cpu")
    )
    assert precheck(["trainer.precision=bf16", "trainer.device=cpu"], str(CONF)) is None


@NO_CUDA
def test_fp16_with_device_auto_on_a_machine_without_cuda_is_refused(tmp_path):
    assert precheck(["trainer.precision=fp16"], str(CONF)) == FP16_ON_CPU.format("auto")
    # train() itself refuses too, before the run directory gets a byte.
    from ner.distributed import Env
    from ner.train import train

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(UserError, match="trainer.precision=fp16 needs a CUDA device"):
        train(compose([*QUICK, "trainer.precision=fp16"]), Env(), run_dir)
    assert list(run_dir.iterdir()) == []


@pytest.mark.slow
@NO_CUDA
def test_fp16_on_the_cpu_from_the_command_line_is_one_line_and_no_run_directory(tmp_path):
    out = run_cli(
        [
            sys.executable,
            "-m",
            "ner.train",
            "trainer.precision=fp16",
            f"hydra.run.dir={tmp_path}/r",
        ],
        tmp_path,
        120,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == "error: " + FP16_ON_CPU.format("auto")
    assert "Traceback" not in out.stdout + out.stderr
    assert not (tmp_path / "r").exists()


def _train_losses(history: list[dict]) -> list[float]:
    return [e["loss"] for e in history if "loss" in e and "eval_loss" not in e]


@pytest.mark.slow
def test_bf16_on_the_cpu_trains_in_bf16_and_the_card_says_so(tmp_path):
    on_cpu = ["trainer.device=cpu"]
    _, fp32 = train_in_process(tmp_path / "fp32", [*QUICK, *on_cpu])
    _, bf16 = train_in_process(tmp_path / "bf16", [*QUICK, *on_cpu, "trainer.precision=bf16"])
    loss32, loss16 = _train_losses(fp32), _train_losses(bf16)
    assert len(loss16) == len(loss32) >= 4
    # Another computation (fp32 would give the same losses to the last bit) ...
    assert loss16 != loss32
    # ... that still learns like fp32: finite, falling, close to fp32's.
    assert all(math.isfinite(v) for v in loss16)
    assert loss16[-1] < 0.8 * loss16[0]
    assert loss16[-1] == pytest.approx(loss32[-1], rel=0.1)
    card = (tmp_path / "bf16" / "README.md").read_text(encoding="utf-8")
    assert "- precision: bf16" in card


def test_gradient_checkpointing_gives_the_same_numbers_in_fp32(tmp_path, monkeypatch):
    """trainer.gradient_checkpointing recomputes the activations in the backward pass: in fp32
    (dropout off, one thread) every logged number is the same, to the bit, and the card says so."""
    import transformers.modeling_utils

    calls = []
    checkpoint = transformers.modeling_utils.checkpoint  # what the layers are handed

    def counted(*args, **kwargs):
        calls.append(kwargs.get("use_reentrant"))
        return checkpoint(*args, **kwargs)

    monkeypatch.setattr(transformers.modeling_utils, "checkpoint", counted)
    quick = [*QUICK, "data.max_train_samples=48", "data.max_eval_samples=20", "trainer.epochs=1"]
    quick += ["model.dropout=0.0", "trainer.log_every=1", "trainer.eval_test=false"]
    _, plain = train_in_process(tmp_path / "plain", quick)
    assert not calls
    gc = [*quick, "trainer.gradient_checkpointing=true"]
    _, checkpointed = train_in_process(tmp_path / "gc", gc)
    assert calls == [False] * 2 * 6  # each of 2 layers, each of 6 steps; not in evaluation

    def numbers(history: list[dict]) -> list[dict]:
        timing = ("runtime", "per_second", "time")
        return [{k: v for k, v in e.items() if not any(t in k for t in timing)} for e in history]

    assert len(plain) > 6 and numbers(checkpointed) == numbers(plain)
    assert "- gradient_checkpointing: True\n" in (tmp_path / "gc" / "README.md").read_text()
    assert "gradient_checkpointing" not in (tmp_path / "plain" / "README.md").read_text()
